//! A real browser for the screen tests: Debian's Chromium, headless, driven over WebDriver by
//! its own `chromedriver` (started per test on a free port, stopped when dropped).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// A headless Chromium with a profile and a download folder of its own.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    /// Where downloads land.
    pub downloads: PathBuf,
    driver: Child,
    folder: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9515)
}

impl Browser {
    /// Starts `chromedriver` and a Chromium window of `width` × `height` CSS pixels.
    ///
    /// # Panics
    /// When `chromedriver` or Chromium cannot be started; when either is not installed the test
    /// fails with one line saying how to install it (`scripts/test` installs both).
    pub async fn start(width: u32, height: u32) -> Self {
        let folder =
            std::env::temp_dir().join(format!("registry-browser-{}", uuid::Uuid::new_v4()));
        let downloads = folder.join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let port = free_port();
        let chromium = crate::require_tool("chromium");
        let driver = Command::new(crate::require_tool("chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), "chrome".into());
        // A reload of a posted page re-posts it (what a person pressing F5 and confirming does).
        capabilities.insert("unhandledPromptBehavior".into(), "accept".into());
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-extensions", "--hide-scrollbars",
                    format!("--user-data-dir={}", folder.join("profile").display()),
                    format!("--window-size={width},{height}"),
                ],
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                },
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a Chromium WebDriver session");
        let browser = Self {
            client,
            downloads,
            driver,
            folder,
        };
        browser.resize(width, height).await;
        browser
    }

    /// Makes the viewport `width` × `height` CSS pixels (the window is a little larger).
    pub async fn resize(&self, width: u32, height: u32) {
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .unwrap();
        let outer = self.client.get_window_size().await.unwrap();
        let dw = outer.0.saturating_sub(inner[0].as_u64().unwrap_or(0));
        let dh = outer.1.saturating_sub(inner[1].as_u64().unwrap_or(0));
        let _ = self
            .client
            .set_window_size(
                width + u32::try_from(dw).unwrap_or(0),
                height + u32::try_from(dh).unwrap_or(0),
            )
            .await;
    }

    /// Fails (saying `what`) when the page is wider than the window.
    pub async fn assert_no_horizontal_scroll(&self, what: &str) {
        let overflow = self
            .client
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(overflow, serde_json::json!(false), "{what}");
    }

    /// Waits (at most 20 s) for an element.
    pub async fn wait(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
    }

    /// The text of the first element matching `css`, or `None` while there is none (a page
    /// being loaded, a part being swapped by htmx).
    pub async fn text_of(&self, css: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    /// Waits (at most 20 s) until the text of `css` satisfies `ready`.
    pub async fn wait_until(&self, css: &str, what: &str, ready: impl Fn(&str) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text_of(css).await;
            if text.as_deref().is_some_and(&ready) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} never happened; {css} shows:\n{}",
                text.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most 20 s) until the input `css` holds `expected` (on the page a click is
    /// loading, not the one it left).
    pub async fn wait_value(&self, css: &str, expected: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let value = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.prop("value").await.ok().flatten(),
                Err(_) => None,
            };
            if value.as_deref() == Some(expected) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{css} never held {expected:?} (it holds {value:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most 20 s) until the page's text contains `text`.
    pub async fn wait_text(&self, text: &str) {
        self.wait_until("body", &format!("showing {text:?}"), |body| {
            body.contains(text)
        })
        .await;
    }

    /// Saves a PNG of the viewport to `REGISTRY_SCREENSHOTS/<name>.png` when that variable
    /// is set (`scripts/screenshots.sh` sets it); otherwise does nothing.
    pub async fn screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("REGISTRY_SCREENSHOTS") {
            let png = self.client.screenshot().await.unwrap();
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png).unwrap();
        }
    }

    /// Waits (at most 20 s) for a finished download whose name ends with `extension`.
    pub async fn downloaded(&self, extension: &str) -> PathBuf {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let found = std::fs::read_dir(&self.downloads)
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(extension));
            if let Some(path) = found {
                return path;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {extension} was downloaded"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}
