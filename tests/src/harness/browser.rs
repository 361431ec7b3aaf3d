//! A real browser for the dashboard tests: Debian's `chromium`, headless, driven through
//! `chromedriver` (WebDriver) on a free loopback port with the `fantoccini` client. The API
//! here is synchronous, like the rest of the harness: each call runs on the browser's own
//! runtime. Every wait polls with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use super::ports::free_addr;
use super::wait::{poll, poll_async};

/// How long chromedriver may take to answer `/status`.
const DRIVER_READY_WITHIN: Duration = Duration::from_secs(30);
/// How long a page may take to show what a test waits for (live updates included).
pub const SHOWS_WITHIN: Duration = Duration::from_secs(60);
/// The window a person at a laptop has.
pub const DESKTOP: (u32, u32) = (1280, 800);
/// A phone held upright.
pub const PHONE: (u32, u32) = (390, 844);

/// Why there is no browser to test with.
#[derive(Debug)]
pub enum BrowserError {
    /// chromium or chromedriver is not installed.
    Unavailable(String),
    Failed(String),
}

impl std::fmt::Display for BrowserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrowserError::Unavailable(why) | BrowserError::Failed(why) => f.write_str(why),
        }
    }
}

/// One headless chromium session.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    log: PathBuf,
    screenshots: PathBuf,
    /// chromium's profile and every temporary file chromedriver and chromium make (their
    /// `TMPDIR`): removed with the session, so test runs leave nothing in `/tmp`. Dropped
    /// after the driver is stopped (fields drop after `Drop::drop`).
    _scratch: tempfile::TempDir,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

impl Browser {
    /// Starts chromedriver and a headless chromium with a desktop-sized window; screenshots go
    /// to `screenshots` (created).
    pub fn start(screenshots: &Path) -> Result<Browser, BrowserError> {
        let driver_bin = on_path("chromedriver").ok_or_else(|| {
            BrowserError::Unavailable(
                "chromedriver is not installed (apt-get install chromium chromium-driver)".into(),
            )
        })?;
        let chromium = ["chromium", "chromium-browser"]
            .iter()
            .find_map(|n| on_path(n))
            .ok_or_else(|| {
                BrowserError::Unavailable(
                    "chromium is not installed (apt-get install chromium)".into(),
                )
            })?;
        std::fs::create_dir_all(screenshots)
            .map_err(|e| BrowserError::Failed(format!("{}: {e}", screenshots.display())))?;
        let addr = free_addr();
        let port = addr.rsplit(':').next().unwrap_or_default().to_string();
        let log = screenshots.join("chromedriver.log");
        let scratch = tempfile::Builder::new()
            .prefix("flotilla-browser-")
            .tempdir()
            .map_err(|e| BrowserError::Failed(format!("a scratch directory: {e}")))?;
        let profile = scratch.path().join("profile");
        let driver = Command::new(&driver_bin)
            .env("TMPDIR", scratch.path())
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| BrowserError::Failed(format!("{}: {e}", driver_bin.display())))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BrowserError::Failed(e.to_string()))?;
        let mut browser = Browser {
            runtime,
            client: None,
            driver,
            log,
            screenshots: screenshots.to_path_buf(),
            _scratch: scratch,
        };
        let url = format!("http://127.0.0.1:{port}");
        poll("chromedriver to answer", DRIVER_READY_WITHIN, || {
            super::http::client()
                .get(format!("{url}/status"))
                .send()
                .ok()
                .filter(|r| r.status().is_success())
        })
        .map_err(BrowserError::Failed)?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                // Root in a container has no user namespaces for chromium's sandbox; /dev/shm
                // is small there. The machine has no internet: no background fetches.
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--no-first-run", "--disable-extensions",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--disable-quic",
                         format!("--user-data-dir={}", profile.display()),
                         format!("--window-size={},{}", DESKTOP.0, DESKTOP.1)],
            }),
        );
        let client = browser
            .runtime
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&url),
            )
            .map_err(|e| BrowserError::Failed(format!("a chromium session: {e}")))?;
        browser.client = Some(client);
        browser.resize(DESKTOP)?;
        Ok(browser)
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.runtime
            .block_on(self.client().goto(url))
            .map_err(|e| format!("open {url}: {e}"))
    }

    pub fn url(&self) -> Result<String, String> {
        self.runtime
            .block_on(self.client().current_url())
            .map(|u| u.to_string())
            .map_err(|e| e.to_string())
    }

    /// Sets the window's outer size.
    pub fn resize(&self, (width, height): (u32, u32)) -> Result<(), BrowserError> {
        self.runtime
            .block_on(self.client().set_window_size(width, height))
            .map_err(|e| BrowserError::Failed(format!("resize: {e}")))
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub fn eval(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.runtime
            .block_on(self.client().execute(script, args))
            .map_err(|e| format!("script failed: {e}"))
    }

    /// Waits until `script` answers something other than `null`/`false`, and answers it.
    pub fn wait_for(&self, what: &str, script: &str) -> Result<Value, String> {
        let client = self.client();
        self.runtime
            .block_on(poll_async(what, SHOWS_WITHIN, || async move {
                match client.execute(script, vec![]).await {
                    Ok(Value::Null) | Ok(Value::Bool(false)) | Err(_) => None,
                    Ok(v) => Some(v),
                }
            }))
    }

    /// Waits until an element matches `css`, and answers it.
    pub fn find(&self, css: &str) -> Result<Element, String> {
        let client = self.client();
        self.runtime.block_on(poll_async(
            &format!("an element `{css}`"),
            SHOWS_WITHIN,
            || async move { client.find(Locator::Css(css)).await.ok() },
        ))
    }

    /// Waits until the text of the element matching `css` satisfies `check`; answers it.
    pub fn wait_text(
        &self,
        css: &str,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let client = self.client();
        let check = &check;
        self.runtime.block_on(poll_async(
            &format!("`{css}` to show {what}"),
            SHOWS_WITHIN,
            || async move {
                let el = client.find(Locator::Css(css)).await.ok()?;
                let text = el.text().await.ok()?;
                check(&text).then_some(text)
            },
        ))
    }

    /// Clicks the element matching `css` once it is there and takes the click (a live page
    /// may draw it again between the find and the click: then it is found again).
    pub fn click(&self, css: &str) -> Result<(), String> {
        let client = self.client();
        self.runtime.block_on(poll_async(
            &format!("`{css}` to take a click"),
            SHOWS_WITHIN,
            || async move {
                let el = client.find(Locator::Css(css)).await.ok()?;
                el.click().await.ok()
            },
        ))
    }

    /// Types `text` into the element matching `css`, as keystrokes (a file input takes a path).
    pub fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let el = self.find(css)?;
        self.runtime
            .block_on(el.send_keys(text))
            .map_err(|e| format!("type into `{css}`: {e}"))
    }

    /// Presses Enter on the element matching `css` (which must take the keyboard's focus).
    pub fn press_enter(&self, css: &str) -> Result<(), String> {
        self.type_into(css, &char::from(fantoccini::key::Key::Enter).to_string())
    }

    pub fn clear(&self, css: &str) -> Result<(), String> {
        let el = self.find(css)?;
        self.runtime
            .block_on(el.clear())
            .map_err(|e| format!("clear `{css}`: {e}"))
    }

    /// Writes a PNG of the window to `SCREENSHOTS/NAME.png`, for a person to look at.
    pub fn screenshot(&self, name: &str) -> Result<PathBuf, String> {
        let png = self
            .runtime
            .block_on(self.client().screenshot())
            .map_err(|e| format!("screenshot: {e}"))?;
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// chromedriver's log, for a failure message.
    pub fn driver_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() && self.client.is_some() {
            if let Ok(path) = self.screenshot("failure") {
                eprintln!("the page when the test failed: {}", path.display());
            }
            // The page's own error line (its tooltip holds the underlying error).
            if let Ok(said) = self.eval(
                "const b = document.getElementById('banner'); return b ? [location.href, b.hidden, b.textContent, b.title] : null",
                vec![],
            ) {
                eprintln!("the page said: {said}");
            }
        }
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
