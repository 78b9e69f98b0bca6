//! Control API benchmark (`make bench`).
//!
//! Starts the release `stratbox serve` with 100 paper bots running (ten
//! shared synthetic feeds, ten 1m candles a second each) and rate limits
//! off, then loads it from a separate process on loopback with
//! `wrk -t2 -c50 -d15s --latency`:
//! 1. GET /api/v1/bots/{id}/status (target: >= 20,000 req/s, p99 < 5 ms);
//! 2. GET /api/v1/bots (all 100 bots in one answer);
//! 3. PUT /api/v1/bots/{id}/config, spread over the 100 bots, each request
//!    changing a strategy parameter (so each is validated, a fresh plugin
//!    instance initialised and warmed up, hot-swapped, and committed with
//!    the bot's checkpoint by its runner before the answer). Target >= 8,000
//!    req/s, p99 < 10 ms.
//! 4. The same PUT, every request to one bot (one runner orders them all).
//!
//! Then 100 WebSocket clients each subscribe to every event of every bot
//! for STRATBOX_BENCH_SECONDS (default 15): every client must receive a
//! gap-free, strictly increasing run of sequence numbers (nothing lost,
//! nothing reordered) and no `lagged` notice of its own (a bot's notice
//! that it found candles waiting is an event like any other: counted and
//! printed).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const BOTS: usize = 100;
const FEEDS: usize = 10;
const TOKEN: &str = "bench-admin-token-0123456789abcdefghijkl";
const WS_CLIENTS: usize = 100;

fn plugin_dir() -> PathBuf {
    std::env::var_os("STRATBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

fn bot_yaml(index: usize) -> String {
    format!(
        "id: bot-{index:03}\nname: bench bot {index}\nstrategy: {{ plugin: ema-cross, params: {{ fast: 5, slow: 20, size: {{ percent_of_equity: 20 }} }} }}\nmarket: {{ symbol: BTCUSDT, timeframe: 1m, feed: {{ kind: synthetic, seed: {}, interval_ms: 100 }} }}\ncapital: {{ quote: USDT, initial: \"10000\" }}\nautostart: true\n",
        index % FEEDS
    )
}

struct Server {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let bots = dir.path().join("bots");
    std::fs::create_dir_all(&bots).unwrap();
    for index in 0..BOTS {
        std::fs::write(bots.join(format!("bot-{index:03}.yaml")), bot_yaml(index)).unwrap();
    }
    let settings = dir.path().join("stratbox.yaml");
    std::fs::write(
        &settings,
        "bots_dir: bots\nrate_limits:\n  viewer: { per_second: 0, burst: 0 }\n  operator: { per_second: 0, burst: 0 }\n  admin: { per_second: 0, burst: 0 }\nlimits: { streams_per_token: 200 }\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&settings)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--plugins-dir")
        .arg(plugin_dir())
        .env("STRATBOX_ADMIN_TOKEN", TOKEN)
        .env("STRATBOX_CACHE_DIR", dir.path().join("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .expect("an address line")
        .unwrap();
    let announced: serde_json::Value = serde_json::from_str(&line).unwrap();
    Server {
        child,
        address: announced["address"].as_str().unwrap().to_string(),
        _dir: dir,
    }
}

/// Requests per second and latency percentiles from wrk's output, and the
/// server's CPU time per request (user + system, the bots' own work
/// included): a figure a busy machine disturbs far less than throughput.
struct WrkResult {
    requests_per_sec: f64,
    p50: String,
    p99: String,
    errors: String,
    cpu_per_request: Duration,
}

/// CPU time the process has used (user + system), from /proc (Linux
/// reports it in USER_HZ, 100 ticks a second).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks =
        |index: usize| -> u64 { fields.get(index).and_then(|f| f.parse().ok()).unwrap_or(0) };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn wrk(url: &str, script: Option<&Path>, server: u32) -> WrkResult {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        "-c50",
        "-d15s",
        "--latency",
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
    ]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let cpu_before = cpu_time(server);
    let output = command
        .arg(url)
        .output()
        .expect("wrk runs (make bench installs it)");
    let cpu = cpu_time(server).saturating_sub(cpu_before);
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let field = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.trim_start()[prefix.len()..].trim().to_string())
            .unwrap_or_default()
    };
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .collect::<Vec<_>>()
        .join("; ");
    let requests: u32 = text
        .lines()
        .find_map(|l| l.split_once(" requests in "))
        .and_then(|(count, _)| count.trim().parse().ok())
        .unwrap_or(0);
    WrkResult {
        cpu_per_request: cpu / requests.max(1),
        requests_per_sec: field("Requests/sec:").parse().unwrap_or(0.0),
        p50: field("50%"),
        p99: field("99%"),
        errors,
    }
}

fn report(name: &str, result: &WrkResult) {
    println!(
        "{name:<34} {:>10.0} req/s   p50 {:>9}   p99 {:>9}   server CPU {:>4} us/req   {}",
        result.requests_per_sec,
        result.p50,
        result.p99,
        result.cpu_per_request.as_micros(),
        if result.errors.is_empty() {
            "no errors"
        } else {
            &result.errors
        }
    );
}

async fn wait_until_running(address: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let running = client
            .get(format!("http://{address}/api/v1/metrics/global"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .ok();
        if let Some(response) = running {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            if body["bots_by_state"]["running"] == BOTS {
                return;
            }
        }
        assert!(Instant::now() < deadline, "bots did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What one WebSocket client received: the sequence numbers of every event,
/// and how many of them were a bot's notice that it found candles waiting
/// (`lagged` with reason `backlog` and nothing `missed`: the bot is behind
/// its feed and catches up in order, and every subscriber gets the notice).
struct Followed {
    seqs: Vec<u64>,
    bots_behind: usize,
}

/// One WebSocket client: every event for `duration`. A `lagged` notice to
/// the client itself (it fell behind and missed events) fails it.
async fn follow_everything(address: String, duration: Duration) -> Result<Followed, String> {
    let mut request = format!("ws://{address}/api/v1/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| e.to_string())?;
    socket
        .send(Message::Text(r#"{"op":"subscribe"}"#.into()))
        .await
        .map_err(|e| e.to_string())?;
    let mut seqs = Vec::new();
    let mut bots_behind = 0;
    let deadline = tokio::time::Instant::now() + duration;
    loop {
        let message = match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => break,
            Ok(None) => return Err("closed".into()),
            Ok(Some(message)) => message.map_err(|e| e.to_string())?,
        };
        let Message::Text(text) = message else {
            continue;
        };
        let event: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if event["type"] == "lagged" {
            // A bot behind its feed catches up in order; one that lost
            // candles (`missed` > 0), or a client that fell behind, fails.
            if event["data"]["reason"] != "backlog" || event["data"]["missed"] != 0 {
                return Err(format!("lagged: {event}"));
            }
            bots_behind += 1;
        }
        if let Some(seq) = event["seq"].as_u64() {
            seqs.push(seq);
        }
    }
    Ok(Followed { seqs, bots_behind })
}

fn main() {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed: run `make bench`, which installs it");
        std::process::exit(1);
    }
    let seconds: u64 = std::env::var("STRATBOX_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let server = start_server();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(wait_until_running(&server.address));
    let pid = server.child.id();
    let idle = cpu_time(pid);
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "server CPU with no requests (the bots' own work): {:.0}% of a core",
        cpu_time(pid).saturating_sub(idle).as_secs_f64() / 2.0 * 100.0
    );
    println!("control API, {BOTS} paper bots running, wrk -t2 -c50 -d15s:");
    let base = format!("http://{}/api/v1", server.address);
    report(
        "GET /bots/{id}/status",
        &wrk(&format!("{base}/bots/bot-007/status"), None, pid),
    );
    report("GET /bots", &wrk(&format!("{base}/bots"), None, pid));

    let config_of = |index: usize, slow: u32| -> serde_json::Value {
        let mut config = stratbox_host::domain::yaml::parse(&bot_yaml(index)).unwrap();
        config["strategy"]["params"]["slow"] = serde_json::json!(slow);
        config
    };
    // Each request changes a strategy parameter (slow 20 <-> 21), so every
    // one is a real swap: a new instance, initialised and warmed up. Each
    // wrk thread walks its own half of the bots (even or odd) and flips the
    // parameter each round, so no two requests ask for the same change.
    let entries: Vec<String> = (0..BOTS)
        .map(|index| {
            format!(
                "{{ \"/api/v1/bots/bot-{index:03}/config\", [[{}]], [[{}]] }}",
                serde_json::to_string(&config_of(index, 21)).unwrap(),
                serde_json::to_string(&config_of(index, 20)).unwrap()
            )
        })
        .collect();
    let spread = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        spread.path(),
        format!(
            "wrk.headers[\"Content-Type\"] = \"application/json\"\nlocal bots = {{ {} }}\nlocal threads = 0\nfunction setup(thread)\n  thread:set(\"lane\", threads)\n  threads = threads + 1\nend\nlocal n = 0\nrequest = function()\n  n = n + 1\n  local bot = bots[((2 * n + lane) % #bots) + 1]\n  local body = bot[2 + (math.floor(2 * n / #bots) % 2)]\n  return wrk.format(\"PUT\", bot[1], nil, body)\nend\n",
            entries.join(", ")
        ),
    )
    .unwrap();
    report(
        "PUT /bots/{id}/config, 100 bots",
        &wrk(
            &format!("{base}/bots/bot-000/config"),
            Some(spread.path()),
            pid,
        ),
    );
    let one = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        one.path(),
        format!(
            "wrk.method = \"PUT\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nlocal bodies = {{ [[{}]], [[{}]] }}\nlocal n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, nil, nil, bodies[(n % 2) + 1])\nend\n",
            serde_json::to_string(&config_of(7, 21)).unwrap(),
            serde_json::to_string(&config_of(7, 20)).unwrap()
        ),
    )
    .unwrap();
    report(
        "PUT /bots/{id}/config, one bot",
        &wrk(
            &format!("{base}/bots/bot-007/config"),
            Some(one.path()),
            pid,
        ),
    );

    let outcomes = tokio.block_on(async {
        let clients: Vec<_> = (0..WS_CLIENTS)
            .map(|_| {
                tokio::spawn(follow_everything(
                    server.address.clone(),
                    Duration::from_secs(seconds),
                ))
            })
            .collect();
        let mut outcomes = Vec::new();
        for client in clients {
            outcomes.push(client.await.expect("client task"));
        }
        outcomes
    });
    let mut events = 0usize;
    let mut bots_behind = 0;
    let mut failures = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(Followed {
                seqs,
                bots_behind: notices,
            }) => {
                bots_behind = bots_behind.max(notices);
                let contiguous = seqs.windows(2).all(|w| w[1] == w[0] + 1);
                if !contiguous || seqs.is_empty() {
                    failures.push(format!("gap or reorder in {} events", seqs.len()));
                }
                events += seqs.len();
            }
            Err(error) => failures.push(error),
        }
    }
    println!(
        "WebSocket: {WS_CLIENTS} clients x every event of {BOTS} bots for {seconds} s: {events} events delivered ({:.0}/s), {}",
        events as f64 / seconds as f64,
        if failures.is_empty() {
            format!(
                "none lost or reordered; {bots_behind} notices of a bot behind its feed (catching up in order)"
            )
        } else {
            format!(
                "FAILURES in {} of {WS_CLIENTS} clients, the first: {}",
                failures.len(),
                failures[0]
            )
        }
    );
    if !failures.is_empty() {
        // `exit` skips destructors: stop the server first.
        drop(server);
        std::process::exit(1);
    }
}
