//! A real `stratbox serve` for black-box API tests: started on a free port
//! of 127.0.0.1 with its own data directory, stopped (and its files
//! removed) when the handle is dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{binary, path_from_env};

/// The admin token every test server accepts (STRATBOX_ADMIN_TOKEN).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghij";

pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Taken over by the next server on [`Server::restart`].
    data_dir: Option<tempfile::TempDir>,
    /// What the server printed on stdout after its address line.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Its log lines (stderr), also passed on to the test's stderr.
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// STRATBOX_LOG, kept for a restart.
    log: String,
}

/// What a test server runs with.
pub struct Options {
    /// Settings YAML (listen, data and plugin dirs are set by the harness).
    pub settings: String,
    /// Bot configs (file name, YAML) seeded on first start.
    pub bots: Vec<(String, String)>,
    /// Presets (name, YAML) seeded on first start.
    pub presets: Vec<(String, String)>,
    /// Set STRATBOX_ADMIN_TOKEN.
    pub admin_token: bool,
    /// STRATBOX_LOG (default `warn`).
    pub log: String,
    /// More environment variables (a crash point, say); not kept for a
    /// restart.
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            settings: "rate_limits:\n  viewer: { per_second: 0, burst: 0 }\n  operator: { per_second: 0, burst: 0 }\n  admin: { per_second: 0, burst: 0 }\nheartbeat_secs: 1\n".into(),
            bots: Vec::new(),
            presets: Vec::new(),
            admin_token: true,
            log: "warn".into(),
            env: Vec::new(),
        }
    }
}

/// A paper bot on a fast synthetic feed that trades often.
pub fn bot_yaml(id: &str, autostart: bool) -> String {
    format!(
        "id: {id}
name: Test bot {id}
strategy:
  plugin: ema-cross
  params: {{ fast: 3, slow: 8, size: {{ percent_of_equity: 50 }} }}
market:
  symbol: BTCUSDT
  timeframe: 1m
  feed: {{ kind: synthetic, seed: 7, interval_ms: 10 }}
capital: {{ quote: USDT, initial: \"10000\" }}
autostart: {autostart}
"
    )
}

impl Server {
    pub fn start(options: Options) -> Server {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config_dir = data_dir.path().join("config");
        let bots_dir = config_dir.join("bots");
        let presets_dir = config_dir.join("presets");
        std::fs::create_dir_all(&bots_dir).unwrap();
        std::fs::create_dir_all(&presets_dir).unwrap();
        for (name, text) in &options.bots {
            std::fs::write(bots_dir.join(name), text).unwrap();
        }
        for (name, text) in &options.presets {
            std::fs::write(presets_dir.join(format!("{name}.yaml")), text).unwrap();
        }
        let settings = config_dir.join("stratbox.yaml");
        std::fs::write(
            &settings,
            format!("{}bots_dir: bots\npresets_dir: presets\n", options.settings),
        )
        .unwrap();
        Self::spawn(
            data_dir,
            &settings,
            options.admin_token,
            &options.log,
            &options.env,
        )
    }

    /// Start the binary again on an existing data directory (after a
    /// SIGKILL, if it still runs).
    pub fn restart(self) -> Server {
        self.restart_with(&[])
    }

    /// [`Server::restart`], with more environment variables.
    pub fn restart_with(mut self, env: &[(String, String)]) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let data_dir = self.data_dir.take().expect("a data dir");
        let settings = data_dir.path().join("config").join("stratbox.yaml");
        Self::spawn(data_dir, &settings, true, &self.log.clone(), env)
    }

    /// Whether the process has ended (waiting up to `timeout`).
    pub fn exited_within(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().expect("wait").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn spawn(
        data_dir: tempfile::TempDir,
        settings: &Path,
        admin_token: bool,
        log: &str,
        env: &[(String, String)],
    ) -> Server {
        let plugins = path_from_env("STRATBOX_PLUGIN_DIR", "target/plugins");
        let mut command = Command::new(binary());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(settings)
            .arg("--data-dir")
            .arg(data_dir.path().join("data"))
            .arg("--plugins-dir")
            .arg(&plugins)
            .env("STRATBOX_CACHE_DIR", data_dir.path().join("cache"))
            .env("STRATBOX_LOG", log)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if admin_token {
            command.env("STRATBOX_ADMIN_TOKEN", ADMIN_TOKEN);
        } else {
            command.env_remove("STRATBOX_ADMIN_TOKEN");
        }
        let mut child = command.spawn().expect("the server starts");
        let logged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log_sink = logged.clone();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                log_sink.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .expect("the server prints its address")
            .expect("utf-8");
        let announced: Value = serde_json::from_str(&first).expect("a JSON line");
        assert_eq!(announced["event"], "listening", "{first}");
        let base = format!("http://{}", announced["address"].as_str().unwrap());
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = printed.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Server {
            child,
            base,
            data_dir: Some(data_dir),
            stdout: printed,
            stderr: logged,
            log: log.to_string(),
        }
    }

    /// Send SIGTERM and wait (up to 30 s) for the exit; the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// `host:port` the server listens on.
    pub fn address(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// Resident memory of the server process, bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// Bytes the data directory holds.
    pub fn data_bytes(&self) -> u64 {
        fn size(path: &Path) -> u64 {
            match std::fs::read_dir(path) {
                Ok(entries) => entries.flatten().map(|e| size(&e.path())).sum(),
                Err(_) => std::fs::metadata(path).map_or(0, |m| m.len()),
            }
        }
        size(&self.data_path())
    }

    /// The compile cache the server was given.
    pub fn cache_path(&self) -> PathBuf {
        self.data_dir
            .as_ref()
            .expect("a data dir")
            .path()
            .join("cache")
    }

    pub fn data_path(&self) -> PathBuf {
        self.data_dir
            .as_ref()
            .expect("a data dir")
            .path()
            .join("data")
    }

    /// Wait until `check` holds, polling; panics after `timeout`.
    pub async fn wait_for<F, Fut>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client with a bearer token.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Client {
    pub fn new(token: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            token: token.map(str::to_string),
        }
    }

    pub fn admin() -> Self {
        Self::new(Some(ADMIN_TOKEN))
    }

    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, url: &str) -> (u16, Value) {
        send(self.request(reqwest::Method::GET, url)).await
    }

    pub async fn post_json(&self, url: &str, body: &Value) -> (u16, Value) {
        send(self.request(reqwest::Method::POST, url).json(body)).await
    }

    pub async fn post(&self, url: &str) -> (u16, Value) {
        send(self.request(reqwest::Method::POST, url)).await
    }

    pub async fn put_json(&self, url: &str, body: &Value) -> (u16, Value) {
        send(self.request(reqwest::Method::PUT, url).json(body)).await
    }

    pub async fn delete(&self, url: &str) -> (u16, Value) {
        send(self.request(reqwest::Method::DELETE, url)).await
    }

    /// Create a token with `role`; its text.
    pub async fn token(&self, server: &Server, role: &str, name: &str) -> String {
        let (status, body) = self
            .post_json(
                &server.url("/tokens"),
                &serde_json::json!({ "role": role, "name": name }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

/// Send and read the status and the JSON body (Null when empty or not JSON).
pub async fn send(builder: reqwest::RequestBuilder) -> (u16, Value) {
    let response = builder.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Upload `count` synthetic 1m candles (seed 11) as the data set
/// `symbol`/1m; the data set's view.
pub async fn synthetic_data_set(server: &Server, symbol: &str, count: usize) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("candles.csv");
    let made = crate::stratbox(
        &[
            "data",
            "synth",
            "--count",
            &count.to_string(),
            "--seed",
            "11",
            "--out",
            csv.to_str().unwrap(),
        ],
        &dir.path().join("cache"),
    );
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let (status, created) = send(
        Client::admin()
            .request(
                reqwest::Method::POST,
                &server.url(&format!("/data?symbol={symbol}&timeframe=1m")),
            )
            .header("content-type", "text/csv")
            .body(std::fs::read(&csv).unwrap()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created
}
