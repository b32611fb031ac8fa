//! The operator's dashboard at `/admin` in the browser, against the real binary in sandbox mode:
//! a wrong admin token shows the API's refusal and no data; the right one shows the pools, each
//! seller's credential (one refused), a dead job, the failing webhook endpoint and a chart of the
//! day's sales made through the Stripe simulator. Its screenshot is decoded and checked for
//! content: the chart's bar colours where the chart is, and many colours in all.

use std::io::Cursor;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::driver::{ChromeDriver, click, find_tool, text, wait_for_text, wait_until};
use crate::support::{self, Market};

/// The chart's bar colours (`GROSS` and `NET` in admin.js).
const GROSS: [u8; 3] = [0x0b, 0x57, 0xd0];
const NET: [u8; 3] = [0x1a, 0x7f, 0x37];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_every_section_for_the_admin_token_and_nothing_for_a_wrong_one() {
    // Arrange: the sandbox, three sales (the house's and two sellers'), Grace's Xano credential
    // refused, a dead job, and Ada's webhook endpoint disabled after failing.
    let chromium = find_tool("CHROMIUM", "chromium");
    let chromedriver = find_tool("CHROMEDRIVER", "chromedriver");
    let db = testkit::TestDb::empty().await;
    let market = Market::start(
        &["serve"],
        &[
            ("DATABASE_URL", &db.url()),
            ("MARKET_BIND", "127.0.0.1:0"),
            ("MARKET_DATA_KEY", support::DATA_KEY),
        ],
    );
    let admin = market.banner_value("admin token").expect("an admin token");
    let ada_hooks = seed(&market.url, &admin, db.pool()).await;
    let driver = ChromeDriver::start(&chromedriver);
    let browser = driver.open_browser(&chromium).await;
    browser
        .goto(&format!("{}/admin", market.url))
        .await
        .unwrap();

    // Act and assert
    a_wrong_token_shows_the_refusal_and_nothing_else(&browser).await;
    the_admin_token_shows_every_section(&browser, &admin, &ada_hooks).await;
    let dir = the_screenshot_shows_the_chart(&browser).await;
    for id in ["pools", "credentials", "jobs", "webhooks"] {
        let section = browser.find(Locator::Id(id)).await.unwrap();
        browser
            .execute("arguments[0].scrollIntoView();", vec![json!(section)])
            .await
            .unwrap();
        let path = dir.join(format!("dashboard-{id}.png"));
        std::fs::write(&path, section.screenshot().await.unwrap()).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
    click(&browser, "#signout").await;
    let after = browser
        .execute(
            "return [document.getElementById('dashboard').hidden, sessionStorage.length];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(after, json!([true, 0]), "signing out forgets the token");
    browser.close().await.unwrap();
}

/// What the dashboard has to show, made as it happens in service (sales paid on the Stripe
/// simulator's page, endpoints through the admin API), or, for the failures, written as the
/// service would record them. Returns the URL of Ada's failing endpoint.
async fn seed(market: &str, admin: &str, db: &sqlx::PgPool) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (canonical, slug) in [
        ("auth-flow_01", "solo"),
        ("webhook-relay_01", "solo"),
        ("audit-log_01", "solo"),
    ] {
        buy(&http, market, canonical, slug).await;
    }
    refuse_graces_credential(db).await;
    sqlx::query(
        "insert into job (kind, subject, state, attempt, last_error, finished_at)
         select 'reconcile_listing', listing_id::text, 'dead', 8, 'Xano answered 502 eight times',
                now()
         from listing where canonical = 'auth-flow_01'",
    )
    .execute(db)
    .await
    .unwrap();
    let ada_hooks = webhook_endpoint(&http, market, admin, Some("Ada's snippets")).await;
    webhook_endpoint(&http, market, admin, None).await;
    disable_after_failing(db, &ada_hooks).await;
    ada_hooks
}

/// The API's refusal in the alert; no section drawn, no token kept.
async fn a_wrong_token_shows_the_refusal_and_nothing_else(browser: &Client) {
    sign_in(browser, "adm_not-the-token").await;
    let alert = wait_for_text(browser, "#alert", "refused").await;
    assert!(
        alert.contains("a valid admin token is required (unauthorized, HTTP 401)"),
        "{alert}"
    );
    let shown = browser
        .execute(
            "return [document.getElementById('dashboard').hidden,
                     [...document.querySelectorAll('.panel-body')].map(b => b.textContent).join(''),
                     sessionStorage.getItem('market.admin_token')];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, json!([true, "", null]), "no data, no token kept");
}

/// Every section loaded, showing what [`seed`] made, the chart with a gross and a net bar, and the
/// token kept in this tab's storage alone.
async fn the_admin_token_shows_every_section(browser: &Client, admin: &str, ada_hooks: &str) {
    sign_in(browser, admin).await;
    wait_until("every section to load", || async {
        let loading = browser
            .execute(
                "return document.querySelectorAll('.panel[data-state=loading]').length;",
                vec![],
            )
            .await
            .ok()?;
        (loading == json!(0)).then_some(())
    })
    .await;
    assert_eq!(text(browser, "#alert").await, "");
    let pools = [
        "auth-flow_01",
        "Solo (solo v1)",
        "webhook-relay_01",
        "audit-log_01",
    ];
    shows(browser, "pools", &pools, "ok").await;
    let credentials = [
        "Ada's snippets",
        "Grace's snippets",
        "healthy",
        "unauthorized",
        "Xano refused the token (401)",
    ];
    shows(browser, "credentials", &credentials, "attention").await;
    let jobs = ["reconcile_listing", "dead", "Xano answered 502 eight times"];
    shows(browser, "jobs", &jobs, "attention").await;
    let webhooks = [
        "1 of 2 endpoints failing.",
        ada_hooks,
        "Ada's snippets",
        "disabled",
        "failed without a break for 3 days",
    ];
    shows(browser, "webhooks", &webhooks, "attention").await;
    let sales = ["3 sales in 30 days", "Gross", "$63.00", "Net"];
    shows(browser, "sales", &sales, "ok").await;
    let drawn = browser
        .execute(
            "return [document.querySelectorAll('#sales svg.chart rect.bar-gross').length,
                     document.querySelectorAll('#sales svg.chart rect.bar-net').length,
                     sessionStorage.getItem('market.admin_token') !== null, localStorage.length];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        drawn,
        json!([1, 1, true, 0]),
        "one day of sales (a gross and a net bar); the token in this tab's storage only"
    );
}

/// The section `id` shows each of `expected` and is in `state` (`ok`, `attention` or `error`).
async fn shows(browser: &Client, id: &str, expected: &[&str], state: &str) {
    let section = browser.find(Locator::Id(id)).await.unwrap();
    let shown = section.text().await.unwrap();
    for needle in expected {
        assert!(shown.contains(needle), "{needle:?} in #{id}: {shown}");
    }
    let actual = section.attr("data-state").await.unwrap();
    assert_eq!(actual.as_deref(), Some(state), "#{id}: {shown}");
}

async fn sign_in(browser: &Client, token: &str) {
    let field = browser.find(Locator::Id("token")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(token).await.unwrap();
    click(browser, "#signin-button").await;
}

/// Buys `canonical`'s tier `slug` as a buyer does, paying on the Stripe simulator's page, and waits
/// for the purchase to be fulfilled.
async fn buy(http: &reqwest::Client, market: &str, canonical: &str, slug: &str) {
    // The sandbox seeds its sellers beside serving: wait for the tier to be on sale.
    let tier = wait_until(&format!("{canonical} {slug} on sale"), || async {
        let catalog: Value = http
            .get(format!("{market}/v1/listings"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let listing = catalog["listings"]
            .as_array()?
            .iter()
            .find(|l| l["canonical"] == canonical)?;
        let tier = listing["tiers"]
            .as_array()?
            .iter()
            .find(|t| t["slug"] == slug && t["purchasable"] == true)?;
        Some(tier["id"].clone())
    })
    .await;
    let checkout: Value = testkit::http::json(
        http.post(format!("{market}/v1/checkout"))
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&json!({ "tier_id": tier, "email": "buyer@example.com" })),
    )
    .await;
    let pay = format!("{}/pay", checkout["checkout_url"].as_str().unwrap());
    let paid = http.post(&pay).send().await.unwrap();
    assert!(paid.status().is_redirection(), "{pay}: {}", paid.status());
    let purchase = format!(
        "{market}/v1/purchases/{}",
        checkout["purchase_id"].as_str().unwrap()
    );
    let key = checkout["receipt_key"].as_str().unwrap();
    wait_until(&format!("{canonical} {slug} fulfilled"), || async {
        let body: Value = http
            .get(&purchase)
            .bearer_auth(key)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (body["status"] == "fulfilled").then_some(())
    })
    .await;
}

/// Registers a webhook endpoint through the admin API, a seller's (by name) or the platform's, for
/// refunds only (none happens here, so nothing is delivered to it), and returns its URL.
async fn webhook_endpoint(
    http: &reqwest::Client,
    market: &str,
    admin: &str,
    seller: Option<&str>,
) -> String {
    let sellers: Value = testkit::http::json(
        http.get(format!("{market}/v1/admin/sellers"))
            .bearer_auth(admin),
    )
    .await;
    let seller_id = seller.map(|name| {
        sellers
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {sellers}"))["seller_id"]
            .clone()
    });
    // Sandbox mode allows loopback receivers; none listens on the discard port, none is needed.
    let url = format!(
        "http://127.0.0.1:9/{}-hooks",
        if seller.is_some() { "ada" } else { "ops" }
    );
    let created = http
        .post(format!("{market}/v1/admin/webhooks"))
        .bearer_auth(admin)
        .json(&json!({ "seller_id": seller_id, "url": url, "event_types": ["purchase.refunded"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    url
}

/// Puts the endpoint at `url` where the deliverer leaves one that failed for three days.
async fn disable_after_failing(db: &sqlx::PgPool, url: &str) {
    let disabled = sqlx::query(
        "update webhook_endpoint
         set state = 'disabled', disabled_at = now(),
             disabled_reason = 'failed without a break for 3 days',
             failing_since = now() - interval '3 days', consecutive_failures = 15
         where url = $1",
    )
    .bind(url)
    .execute(db)
    .await
    .unwrap();
    assert_eq!(disabled.rows_affected(), 1);
}

/// Marks Grace's Xano credential refused, as a 401 from her Xano would, once no job is due (pools
/// refilled; a call that succeeded with her credential would heal it), its next probe an hour away.
async fn refuse_graces_credential(db: &sqlx::PgPool) {
    let grace = "(select seller_id from seller where name = 'Grace''s snippets')";
    wait_until("the jobs to settle", || async {
        let busy: i64 = sqlx::query_scalar(
            "select count(*) from job
             where state = 'running' or (state = 'queued' and due_at <= now())",
        )
        .fetch_one(db)
        .await
        .ok()?;
        (busy == 0).then_some(())
    })
    .await;
    let refused = sqlx::query(&format!(
        "update seller_xano_credential
         set state = 'unauthorized', refused_at = now(), last_probe_at = now() + interval '1 hour',
             last_error = 'Xano refused the token (401)'
         where seller_id = {grace}"
    ))
    .execute(db)
    .await
    .unwrap();
    assert_eq!(refused.rows_affected(), 1);
}

/// Screenshots the page's top, saves it in a temporary directory (returned), and checks the PNG:
/// pixels of both bar colours inside the chart's rectangle, and many colours over the whole image.
async fn the_screenshot_shows_the_chart(browser: &Client) -> std::path::PathBuf {
    let rect = browser
        .execute(
            "document.activeElement.blur(); window.scrollTo(0, 0);
             const r = document.querySelector('#sales svg.chart').getBoundingClientRect();
             const k = window.devicePixelRatio;
             return [r.left * k, r.top * k, r.right * k, r.bottom * k].map(Math.round);",
            vec![],
        )
        .await
        .unwrap();
    let rect: Vec<u32> = serde_json::from_value(rect).unwrap();
    let png = browser.screenshot().await.unwrap();
    let dir = std::env::temp_dir().join(format!("market-dashboard-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dashboard.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());

    let mut decoder = png::Decoder::new(Cursor::new(png));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let samples = frame.color_type.samples();
    let (width, height) = (frame.width, frame.height);
    let at = |x: u32, y: u32| {
        let i = (y as usize * width as usize + x as usize) * samples;
        [pixels[i], pixels[i + 1], pixels[i + 2]]
    };
    let near = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 3);

    let (left, top) = (rect[0], rect[1]);
    let (right, bottom) = (rect[2].min(width), rect[3].min(height));
    assert!(
        left < right && top < bottom,
        "the chart {rect:?} is in the {width}x{height} screenshot {}",
        path.display()
    );
    let (mut gross, mut net) = (0, 0);
    for y in top..bottom {
        for x in left..right {
            let pixel = at(x, y);
            gross += usize::from(near(pixel, GROSS));
            net += usize::from(near(pixel, NET));
        }
    }
    assert!(
        gross >= 200 && net >= 200,
        "bars in the chart's area: {gross} gross and {net} net pixels ({})",
        path.display()
    );
    let colours: std::collections::HashSet<[u8; 3]> = (0..height)
        .step_by(2)
        .flat_map(|y| (0..width).step_by(2).map(move |x| (x, y)))
        .map(|(x, y)| at(x, y))
        .collect();
    assert!(
        colours.len() >= 64,
        "a page, not a blank: {} colours ({})",
        colours.len(),
        path.display()
    );
    dir
}
