//! The storefront page in a real browser: headless Chromium, driven over WebDriver (chromedriver +
//! fantoccini), against the real `market` binary in sandbox mode on a fresh database.
//!
//! One buyer's story, in order: the catalog shows prices and installs; a checkout the server refuses
//! (409, tier taken off sale) shows the server's message in the alert region; leaving the payment
//! page with Cancel comes back calmly; then a purchase made with the keyboard only is paid on the
//! Stripe simulator's page, and the token the page shows is the one in the database and live at
//! the Xano simulator; "My purchases" signs in with a link mailed to the sandbox's mail page and
//! lists it; last, the API reference at `/docs` renders under the pages' CSP. Leaves screenshots at
//! `target/storefront-purchase.png` (the purchase), `target/storefront-refused.png` (the refused
//! checkout), `target/storefront-portal.png` and `target/api-reference.png`.
//!
//! The operator's dashboard at `/admin` has a test of its own (`dashboard`): a wrong admin token
//! shows nothing, the right one every section and a sales chart, checked in a decoded screenshot.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test` installs them). Without them this
//! test fails with a message saying so; it never passes silently. `CHROMIUM` and `CHROMEDRIVER`
//! override where they are.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

// `support` is shared with tests/tour.rs.
#[path = "browser/dashboard.rs"]
mod dashboard;
#[path = "browser/driver.rs"]
mod driver;
#[path = "browser/portal.rs"]
mod portal;
mod support;

use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use support::Market;

use driver::{
    ChromeDriver, click, find_tool, press, screenshot, tab_until, text, type_keys, wait_for_css,
    wait_for_text, wait_for_url_prefix, wait_until,
};

/// How long any one thing may take to appear.
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_buys_a_tier_in_a_real_browser_and_sees_the_token_that_xano_holds() {
    // Arrange: the tools first, so a machine without them fails at once and says what to do.
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
    let driver = ChromeDriver::start(&chromedriver);
    let browser = driver.open_browser(&chromium).await;
    let shop = Shop::new(&market, &db, browser).await;

    // Act and assert, as one buyer's visit.
    shop.catalog_shows_prices_and_installs().await;
    shop.a_refused_checkout_shows_the_servers_message().await;
    shop.cancelling_payment_comes_back_calmly().await;
    shop.buy_with_the_keyboard_and_pay().await;
    let (purchase, token) = shop.the_purchase_shows_its_token().await;
    shop.the_token_is_the_databases(purchase, &token).await;
    shop.the_token_is_live_at_xano(&token).await;
    shop.a_reload_shows_it_again(&token).await;
    shop.my_purchases_open_with_a_mailed_link("buyer@example.com", &token)
        .await;
    shop.the_api_reference_renders_under_the_pages_csp().await;

    shop.browser.close().await.unwrap();
}

/// The storefront under test, as a browser sees it, with what the test needs to check it.
struct Shop<'a> {
    browser: Client,
    db: &'a testkit::TestDb,
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/`
    storefront: String,
    stripe_sim: String,
    xano_control: reqwest::Url,
    /// auth-flow_01's tiers.
    solo: String,
    agency: String,
}

impl<'a> Shop<'a> {
    async fn new(market: &Market, db: &'a testkit::TestDb, browser: Client) -> Self {
        let http = reqwest::Client::new();
        let catalog: Value =
            testkit::http::json(http.get(format!("{}/v1/listings", market.url))).await;
        let tier_id = |slug: &str| -> String {
            let listing = catalog["listings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["canonical"] == "auth-flow_01")
                .unwrap();
            let tier = listing["tiers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["slug"] == slug)
                .unwrap();
            tier["id"].as_str().unwrap().to_owned()
        };
        let xano = market.banner_value("xano sim").expect("xano sim URL");
        Self {
            storefront: format!("{}/", market.url),
            stripe_sim: market.banner_value("stripe sim").expect("stripe sim URL"),
            xano_control: reqwest::Url::parse(&xano).unwrap().join("/__sim/").unwrap(),
            solo: tier_id("solo"),
            agency: tier_id("agency"),
            browser,
            db,
            http,
        }
    }

    /// Listings, prices formatted from minor units, installs allowed; labels and live regions.
    async fn catalog_shows_prices_and_installs(&self) {
        let browser = &self.browser;
        browser.goto(&self.storefront).await.unwrap();
        wait_for_css(browser, &buy_button(&self.solo)).await;
        let listings = text(browser, "#listings").await;
        for expected in [
            "Auth flow",
            "Solo",
            "$19.00",
            "Up to 5 installs",
            "Agency",
            "$99.00",
            "Up to 50 installs",
            "Stripe billing",
            "$29.00",
        ] {
            assert!(listings.contains(expected), "{expected:?} in {listings:?}");
        }
        assert_eq!(
            text(browser, "#alert").await,
            "",
            "no alert on a fresh page"
        );
        let problems = browser.execute(ACCESSIBILITY_CHECKS, vec![]).await.unwrap();
        assert_eq!(problems, json!([]), "accessibility problems");
    }

    /// The tier goes off sale after the page loaded: Buy answers 409, and the page shows the
    /// server's message in a visible alert; the buyer stays on the page.
    async fn a_refused_checkout_shows_the_servers_message(&self) {
        let browser = &self.browser;
        sqlx::query("update tier set active = false where tier_id = $1::uuid")
            .bind(&self.agency)
            .execute(self.db.pool())
            .await
            .unwrap();
        click(browser, &buy_button(&self.agency)).await;
        let alert = wait_for_text(browser, "#alert", "no longer on sale").await;
        assert!(alert.contains("This tier is no longer on sale."), "{alert}");
        assert!(alert.contains("tier_not_on_sale (HTTP 409)"), "{alert}");
        let label = format!("{} .label", buy_button(&self.agency));
        assert_eq!(text(browser, &label).await, "Not on sale");
        let alert_box = browser.find(Locator::Css("[role=alert]")).await.unwrap();
        assert!(
            alert_box.is_displayed().await.unwrap(),
            "the alert is visible"
        );
        assert_eq!(
            browser.current_url().await.unwrap().as_str(),
            self.storefront,
            "still on the storefront"
        );
        screenshot(browser, "storefront-refused.png").await;
    }

    /// Buy, then Cancel on the payment page: back on the storefront, nothing alarming.
    async fn cancelling_payment_comes_back_calmly(&self) {
        let browser = &self.browser;
        click(browser, &buy_button(&self.solo)).await;
        wait_for_url_prefix(browser, &self.stripe_sim).await;
        click(browser, "#cancel").await;
        wait_for_text(browser, "#notice", "Nothing was charged").await;
        assert_eq!(
            browser.current_url().await.unwrap().as_str(),
            self.storefront,
            "cancel returns to the storefront"
        );
        wait_for_css(browser, &buy_button(&self.solo)).await;
        assert_eq!(text(browser, "#alert").await, "", "cancelling is no error");
        let history = wait_for_text(browser, "#history-list", "Not paid").await;
        assert!(history.contains("Auth flow — Solo"), "{history}");
    }

    /// With the keyboard only: Tab to the e-mail field, type, Tab to Buy (its focus visible),
    /// Enter; then Pay on the Stripe simulator's hosted page.
    async fn buy_with_the_keyboard_and_pay(&self) {
        let browser = &self.browser;
        tab_until(browser, "email").await;
        type_keys(browser, "buyer@example.com").await;
        tab_until(browser, &format!("tier:{}", self.solo)).await;
        let outline = browser
            .execute(
                "const s = getComputedStyle(document.activeElement);
                 return s.outlineStyle + ' ' + s.outlineWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(outline, json!("solid 3px"), "a visible focus ring on Buy");
        press(browser, &Key::Enter).await;

        wait_for_url_prefix(browser, &self.stripe_sim).await;
        assert_eq!(text(browser, "#total").await, "$19.00");
        click(browser, "#pay").await;
    }

    /// Back on the storefront: status, the token, installs used of allowed, how to install, a
    /// working copy button. Returns the purchase id and the token shown.
    async fn the_purchase_shows_its_token(&self) -> (uuid::Uuid, String) {
        let browser = &self.browser;
        let token = shown_token(browser).await;
        let page_url = browser.current_url().await.unwrap();
        let purchase = page_url
            .query_pairs()
            .find(|(k, _)| k == "purchase")
            .map(|(_, v)| uuid::Uuid::parse_str(&v).unwrap())
            .expect("?purchase= in the URL");
        assert!(
            !page_url.as_str().contains("session_id"),
            "the session id leaves the URL once confirmed: {page_url}"
        );
        let status = text(browser, "#purchase-status").await;
        assert!(status.contains("install token is ready"), "{status}");
        assert_eq!(text(browser, "#installs").await, "0 of 5 installs used");
        let summary = text(browser, "#purchase-summary").await;
        assert_eq!(summary, "Auth flow — Solo · $19.00");
        let steps = text(browser, "#install-steps").await;
        assert!(steps.contains("install access token"), "{steps}");
        let snippet_link = browser.find(Locator::Id("snippet-link")).await.unwrap();
        assert_eq!(
            snippet_link.attr("href").await.unwrap().as_deref(),
            Some("https://www.xano.com/snippet/auth-flow_01/")
        );
        assert_eq!(text(browser, "#alert").await, "");

        // The copy button answers (clipboard, or a selection to copy by hand where refused).
        click(browser, "#copy-token").await;
        let notice = wait_for_text(browser, "#notice", "token").await;
        assert!(
            notice.contains("copied") || notice.contains("selected"),
            "{notice}"
        );
        screenshot(browser, "storefront-purchase.png").await;
        (purchase, token)
    }

    /// The token shown is the purchase's live token in the database; the typed e-mail was kept.
    async fn the_token_is_the_databases(&self, purchase: uuid::Uuid, token: &str) {
        let pool = self.db.pool();
        let in_db = support::tokens_where(
            pool,
            &format!("purchase_id = '{purchase}' and state = 'assigned'"),
        )
        .await;
        assert_eq!(
            [token],
            in_db.as_slice(),
            "the page shows the database's token"
        );
        let (status, email): (String, Option<String>) =
            sqlx::query_as("select status::text, email from purchase where purchase_id = $1")
                .bind(purchase)
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(status, "fulfilled");
        assert_eq!(
            email.as_deref(),
            Some("buyer@example.com"),
            "the typed e-mail"
        );
    }

    /// ... and live at the Xano simulator, with all of its installs left.
    async fn the_token_is_live_at_xano(&self, token: &str) {
        let url = self
            .xano_control
            .join("snippets/auth-flow_01/tokens")
            .unwrap();
        let at_xano: Value = testkit::http::json(self.http.get(url)).await;
        let live = at_xano
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["token"] == token)
            .unwrap_or_else(|| panic!("{token} is not live at Xano: {at_xano}"));
        assert_eq!(live["max_installs"], 5);
        assert_eq!(live["current_installs"], 0);
    }

    /// A reload shows the same purchase, from this browser's receipt key.
    async fn a_reload_shows_it_again(&self, token: &str) {
        self.browser.refresh().await.unwrap();
        assert_eq!(shown_token(&self.browser).await, token);
    }
}

/// Waits for a fulfilled purchase's token on the page.
impl Shop<'_> {
    /// `/docs` renders the API document with the service's own script, which the page's
    /// Content-Security-Policy (same origin only) lets run.
    async fn the_api_reference_renders_under_the_pages_csp(&self) {
        let browser = &self.browser;
        browser
            .goto(&format!("{}docs", self.storefront))
            .await
            .unwrap();
        wait_for_text(browser, "#docs", "/v1/checkout").await;
        wait_for_text(browser, "#docs", "CheckoutRequest").await;
        screenshot(browser, "api-reference.png").await;
    }
}

async fn shown_token(browser: &Client) -> String {
    wait_until("the token on the page", || async {
        let token = browser
            .find(Locator::Css("#purchase[data-status=fulfilled] #token"))
            .await
            .ok()?;
        Some(token.text().await.ok()?).filter(|t| !t.is_empty())
    })
    .await
}

/// In-page checks a browser can make cheaply: labels, names, the alert region, one h1, a language.
const ACCESSIBILITY_CHECKS: &str = r"
const problems = [];
for (const input of document.querySelectorAll('input, select, textarea')) {
  if (!input.labels || input.labels.length === 0) problems.push('unlabelled input #' + input.id);
}
for (const control of document.querySelectorAll('button, a[href]')) {
  if (!control.textContent.trim() && !control.getAttribute('aria-label')) {
    problems.push('no accessible name: ' + control.outerHTML);
  }
}
if (!document.querySelector('[role=alert]')) problems.push('no role=alert region');
if (!document.querySelector('[aria-live], [role=status]')) problems.push('no live region');
if (!document.documentElement.lang) problems.push('no lang on <html>');
if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
return problems;
";

fn buy_button(tier: &str) -> String {
    format!("button.buy[data-tier='{tier}']")
}
