//! The buyer portal in the browser: "My purchases" asks for a sign-in link, the link arrives in the
//! sandbox's mail page, following it lists the purchase with its token and usage, the link works
//! once, and the session cookie is out of the page's reach (`HttpOnly`).

use fantoccini::Locator;
use serde_json::json;

use super::Shop;
use super::driver::{click, target_dir, text, wait_for_text, wait_until};

impl Shop<'_> {
    pub(crate) async fn my_purchases_open_with_a_mailed_link(&self, email: &str, token: &str) {
        let browser = &self.browser;
        browser.goto(&self.storefront).await.unwrap();
        let field = browser.find(Locator::Id("portal-email")).await.unwrap();
        field.send_keys(email).await.unwrap();
        click(browser, "#portal-send").await;
        wait_for_text(browser, "#portal-status", "sign-in link is on its way").await;

        // The sandbox keeps mail in-process and shows it at /sandbox/mail.
        let mail_page = format!("{}sandbox/mail", self.storefront);
        let prefix = format!("{}#portal=", self.storefront);
        let link = wait_until("the sign-in link in the sandbox's mail", || async {
            let page = self
                .http
                .get(&mail_page)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let start = page.find(&prefix)?;
            let rest = &page[start..];
            let end = rest.find(|c: char| c.is_whitespace() || c == '<')?;
            Some(rest[..end].to_owned())
        })
        .await;

        browser.goto(&link).await.unwrap();
        let listed = wait_for_text(browser, "#portal-list", token).await;
        assert!(listed.contains("0 of 5 installs used"), "{listed}");
        assert!(listed.contains("Solo"), "{listed}");
        let url = browser.current_url().await.unwrap();
        assert!(
            !url.as_str().contains("pl_"),
            "the link's key leaves the address bar: {url}"
        );
        let cookies = browser
            .execute("return document.cookie;", vec![])
            .await
            .unwrap();
        assert!(
            !cookies
                .as_str()
                .unwrap_or_default()
                .contains("market_portal"),
            "the session cookie is HttpOnly: {cookies}"
        );
        assert_eq!(text(browser, "#portal-status").await, "1 purchase.");
        // The section itself (the page's screenshot is of its top).
        let section = browser.find(Locator::Id("portal")).await.unwrap();
        let png = section.screenshot().await.unwrap();
        let path = target_dir().join("storefront-portal.png");
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());

        // The link worked once.
        let again = self
            .http
            .post(format!("{}v1/portal/sessions", self.storefront))
            .json(&json!({ "link": link.split_once("#portal=").unwrap().1 }))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 401);

        click(browser, "#portal-signout").await;
        wait_for_text(browser, "#portal-status", "Signed out").await;
    }
}
