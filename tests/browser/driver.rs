//! Driving Chromium for tests/browser.rs: finding chromium and chromedriver, a chromedriver in a
//! process group of its own (killed with everything it started when dropped), and the small
//! WebDriver steps the test is written in (click, type, wait for text, Tab to an element).

use std::future::Future;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::{WAIT, support};

/// Saves what the buyer sees (top of the page, no focus ring or selection) as `target/<name>`.
pub(crate) async fn screenshot(browser: &Client, name: &str) {
    browser
        .execute(
            "document.activeElement.blur(); window.getSelection().removeAllRanges(); window.scrollTo(0, 0);",
            vec![],
        )
        .await
        .unwrap();
    let png = browser.screenshot().await.unwrap();
    let path = target_dir().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

pub(crate) async fn text(browser: &Client, css: &str) -> String {
    match browser.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

pub(crate) async fn click(browser: &Client, css: &str) {
    wait_for_css(browser, css).await.click().await.unwrap();
}

pub(crate) async fn wait_for_css(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
}

pub(crate) async fn wait_for_text(browser: &Client, css: &str, needle: &str) -> String {
    wait_until(&format!("{needle:?} in {css}"), || async {
        let shown = text(browser, css).await;
        shown.contains(needle).then_some(shown)
    })
    .await
}

pub(crate) async fn wait_for_url_prefix(browser: &Client, prefix: &str) {
    wait_until(&format!("a page under {prefix}"), || async {
        let url = browser.current_url().await.ok()?;
        url.as_str().starts_with(prefix).then_some(())
    })
    .await;
}

/// Polls `check` every 100 ms until it gives a value, or fails the test after [`WAIT`].
pub(crate) async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Presses and releases one key, as a keyboard does (on whatever has focus).
pub(crate) async fn press(browser: &Client, key: &Key) {
    let value = key.chars().next().unwrap();
    let keys = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value })
        .then(KeyAction::Up { value });
    browser.perform_actions(keys).await.unwrap();
}

pub(crate) async fn type_keys(browser: &Client, text: &str) {
    let mut keys = KeyActions::new("keyboard".to_owned());
    for value in text.chars() {
        keys = keys
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
    }
    browser.perform_actions(keys).await.unwrap();
}

/// Presses Tab until the focused element is `target`: an id, or `tier:<id>` for a Buy button.
pub(crate) async fn tab_until(browser: &Client, target: &str) {
    for _ in 0..40 {
        press(browser, &Key::Tab).await;
        let focused = browser
            .execute(
                "const e = document.activeElement;
                 return e.dataset.tier ? 'tier:' + e.dataset.tier : e.id;",
                vec![],
            )
            .await
            .unwrap();
        if focused == target {
            return;
        }
    }
    panic!("Tab never reached {target}");
}

/// A tool from `$env_var` or the PATH; fails the test, saying how to install it, when absent.
pub(crate) fn find_tool(env_var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env_var}={} is not a file; unset it to use `{name}` from the PATH (`scripts/test` \
             installs Debian's chromium and chromium-driver)",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed, so the browser test cannot run. Run `scripts/test` \
                 (it installs Debian's chromium and chromium-driver when missing), or \
                 `apt-get install -y chromium chromium-driver`; or set {env_var}."
            )
        })
}

/// A chromedriver process in a process group of its own, with a fresh Chromium profile. Dropping it
/// kills the whole group (chromedriver and every Chromium process it started, even if the test
/// panicked before closing the session) and deletes the profile.
pub(crate) struct ChromeDriver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl ChromeDriver {
    pub(crate) fn start(chromedriver: &Path) -> Self {
        let port = support::free_port();
        let profile = std::env::temp_dir().join(format!(
            "market-browser-test-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile,
        }
    }

    /// Waits for chromedriver, then opens a headless Chromium session.
    pub(crate) async fn open_browser(&self, chromium: &Path) -> Client {
        let status = format!("{}/status", self.url);
        wait_until("chromedriver to answer", || async {
            let body: Value = reqwest::get(&status).await.ok()?.json().await.ok()?;
            body["value"]["ready"].as_bool().filter(|ready| *ready)
        })
        .await;
        // The flags that keep Chromium off the network on this kind of machine (it has none but
        // loopback), in a profile of its own, with a fixed language so prices read "$19.00".
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--lang=en-US",
                    "--window-size=1280,1100",
                    format!("--user-data-dir={}", self.profile.display()),
                ],
                "prefs": { "intl.accept_languages": "en-US" },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("open a Chromium session through chromedriver: {e}"))
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (process_group(0)); `kill -KILL -<pgid>`.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `target/` (or CARGO_TARGET_DIR): the test binary's `market` is `<target>/<profile>/market`.
pub(crate) fn target_dir() -> PathBuf {
    let market = Path::new(env!("CARGO_BIN_EXE_market"));
    market
        .parent()
        .and_then(Path::parent)
        .expect("the market binary under a target directory")
        .to_path_buf()
}
