//! MQTT alerts (cargo feature `mqtt`), through `rumqttc`. Topics under a prefix (default
//! `hood/<host name>`):
//!
//! * `<prefix>/<camera>/state` — retained `alert` | `clear`; published at start, on every
//!   transition and again after every (re)connection;
//! * `<prefix>/<camera>/event` — each transition's JSON, the same object as its line in
//!   `events.jsonl`;
//! * `<prefix>/status` — retained `online`; the last will (and a clean stop) sets `offline`;
//! * `<prefix>/health` — the health JSON every health interval.
//!
//! All QoS 1. **Nothing is lost while the broker is away**: messages wait in hood's own outbox
//! until the broker acknowledges them (PUBACK). The connection thread drives `rumqttc` and is the
//! only one that hands messages to it, and only while connected; a message handed over is
//! matched to its packet id when it goes out and leaves the outbox at its PUBACK. After a
//! connection error every unacknowledged message is handed over again on the next connection
//! (clean sessions, so `rumqttc` never replays on its own: a subscriber may see a message twice,
//! never zero times). Only health messages are superseded (the newest unsent one is kept); when
//! the outbox holds [`OUTBOX_LIMIT`] messages the oldest go, counted and logged.

use rumqttc::{Client, Connection, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages kept for a broker that is away; beyond it the oldest are dropped (counted).
pub const OUTBOX_LIMIT: usize = 10_000;

/// What `--mqtt …` asked for.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// `mqtt://host[:port]` (1883) or `mqtts://host[:port]` (8883).
    pub url: String,
    pub prefix: String,
    /// The cameras' names (one topic level each).
    pub cameras: Vec<String>,
    pub username: Option<String>,
    /// A file holding the password (so it is not on the command line).
    pub password_file: Option<PathBuf>,
    /// PEM CA certificates for `mqtts://` (a private CA, or the system bundle
    /// `/etc/ssl/certs/ca-certificates.crt`).
    pub ca: Option<PathBuf>,
}

/// Why the MQTT options do not work (checked before the connection thread starts).
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("--mqtt {url}: {problem} (expected mqtt://host[:port] or mqtts://host[:port])")]
    Url { url: String, problem: UrlProblem },
    #[error("--mqtt-prefix '{0}': empty, or has a wildcard (+ #)")]
    Prefix(String),
    #[error("--mqtt-password-file {}: {source}", path.display())]
    PasswordFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--mqtt-password-file needs --mqtt-username")]
    PasswordWithoutUser,
    #[error(
        "--mqtt {url}: mqtts:// needs --mqtt-ca FILE (PEM; the system bundle is \
         /etc/ssl/certs/ca-certificates.crt)"
    )]
    NoCa { url: String },
    #[error("--mqtt-ca {}: {source}", path.display())]
    CaRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--mqtt-ca {}: no PEM certificate in it", path.display())]
    NoCertificate { path: PathBuf },
    #[error("MQTT thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What is wrong with an `--mqtt` URL ([`MqttError::Url`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("unknown scheme")]
    Scheme,
    #[error("put the user in --mqtt-username and the password in --mqtt-password-file")]
    Credentials,
    #[error("no host, or a path")]
    HostOrPath,
    #[error("bad port")]
    Port,
    #[error("no host")]
    NoHost,
}

/// `mqtt://host[:port]` → (tls, host, port).
pub fn parse_url(url: &str) -> Result<(bool, String, u16), MqttError> {
    let bad = |problem: UrlProblem| MqttError::Url {
        url: url.to_string(),
        problem,
    };
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else {
        return Err(bad(UrlProblem::Scheme));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') {
        return Err(bad(UrlProblem::Credentials));
    }
    if rest.is_empty() || rest.contains('/') {
        return Err(bad(UrlProblem::HostOrPath));
    }
    let default = if tls { 8883 } else { 1883 };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
            h.to_string(),
            p.parse::<u16>().map_err(|_| bad(UrlProblem::Port))?,
        ),
        _ => (rest.to_string(), default),
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty() {
        return Err(bad(UrlProblem::NoHost));
    }
    Ok((tls, host, port))
}

/// A topic level from a name: MQTT wildcards and separators become `_`.
pub fn topic_level(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if matches!(c, '/' | '+' | '#') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// The default prefix: `hood/<host name>`.
pub fn default_prefix() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!(
        "hood/{}",
        topic_level(if host.is_empty() { "device" } else { &host })
    )
}

#[derive(Debug, Clone)]
struct Message {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
    health: bool,
}

/// Messages not yet acknowledged, by sequence number, and what the connection thread did with
/// them.
#[derive(Default)]
struct Outbox {
    next: u64,
    /// Not acknowledged yet (sent or not).
    waiting: BTreeMap<u64, Message>,
    /// Handed to rumqttc, not yet seen going out (in order).
    handed: VecDeque<u64>,
    /// Gone out under a packet id, waiting for its PUBACK.
    inflight: HashMap<u16, u64>,
    /// Highest sequence number handed over on this connection.
    handed_upto: Option<u64>,
}

impl Outbox {
    fn push(&mut self, m: Message, dropped: &AtomicU64) {
        if m.health {
            // Only the newest unsent health message matters.
            let handed_upto = self.handed_upto;
            self.waiting
                .retain(|seq, old| !(old.health && handed_upto.is_none_or(|h| *seq > h)));
        }
        while self.waiting.len() >= OUTBOX_LIMIT {
            if let Some((seq, _)) = self.waiting.pop_first() {
                self.handed.retain(|s| *s != seq);
                self.inflight.retain(|_, s| *s != seq);
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.waiting.insert(self.next, m);
        self.next += 1;
    }

    /// The connection broke: everything not acknowledged goes again on the next connection.
    fn reset(&mut self) {
        self.handed.clear();
        self.inflight.clear();
        self.handed_upto = None;
    }

    /// Messages to hand over now: those not yet handed on this connection.
    fn take_unhanded(&mut self) -> Vec<(u64, Message)> {
        let from = self.handed_upto.map_or(0, |h| h + 1);
        let out: Vec<(u64, Message)> = self
            .waiting
            .range(from..)
            .map(|(s, m)| (*s, m.clone()))
            .collect();
        if let Some((last, _)) = out.last() {
            self.handed_upto = Some(*last);
        }
        out
    }
}

struct Shared {
    outbox: Mutex<Outbox>,
    dropped: AtomicU64,
    connected: AtomicBool,
    stop: AtomicBool,
    /// The retained state of each camera, re-published after every (re)connection.
    state: Mutex<std::collections::BTreeMap<String, String>>,
}

impl Shared {
    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The MQTT side of the daemon; see the module documentation.
pub struct Mqtt {
    shared: Arc<Shared>,
    client: Client,
    thread: Option<std::thread::JoinHandle<()>>,
    prefix: String,
    /// Topic levels of the cameras; the first is used for events without a `camera` field.
    cameras: Vec<String>,
    describe: String,
}

fn read_secret(path: &std::path::Path) -> Result<String, MqttError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|source| MqttError::PasswordFile {
            path: path.to_path_buf(),
            source,
        })
}

impl Mqtt {
    /// Checks the options and starts the connection thread. An unreachable broker is not an
    /// error: hood keeps trying, and the outbox keeps the messages.
    pub fn start(cfg: &MqttConfig) -> Result<Mqtt, MqttError> {
        let (tls, host, port) = parse_url(&cfg.url)?;
        let prefix = cfg.prefix.trim_end_matches('/').to_string();
        if prefix.is_empty() || prefix.contains(['+', '#']) {
            return Err(MqttError::Prefix(cfg.prefix.clone()));
        }
        let client_id = format!("hood-watch-{}", topic_level(&prefix.replace('/', "-")));
        let mut opts = MqttOptions::new(client_id, host.clone(), port);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_clean_session(true);
        opts.set_last_will(LastWill::new(
            format!("{prefix}/status"),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        match (&cfg.username, &cfg.password_file) {
            (Some(u), Some(p)) => {
                opts.set_credentials(u.clone(), read_secret(p)?);
            }
            (Some(u), None) => {
                opts.set_credentials(u.clone(), String::new());
            }
            (None, Some(_)) => return Err(MqttError::PasswordWithoutUser),
            (None, None) => {}
        }
        if tls {
            let Some(ca) = &cfg.ca else {
                return Err(MqttError::NoCa {
                    url: cfg.url.clone(),
                });
            };
            let pem = std::fs::read(ca).map_err(|source| MqttError::CaRead {
                path: ca.clone(),
                source,
            })?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(MqttError::NoCertificate { path: ca.clone() });
            }
            // rustls needs a process-wide crypto provider; an error means one is installed.
            let _ = rustls::crypto::ring::default_provider().install_default();
            opts.set_transport(rumqttc::Transport::tls(pem, None, None));
        }
        let cameras: Vec<String> = cfg.cameras.iter().map(|c| topic_level(c)).collect();
        let (client, mut connection) = Client::new(opts, 64);
        // Small messages go out at once: without TCP_NODELAY, Nagle's algorithm held each
        // event back until the broker's delayed ACK (≈ 40 ms on Linux).
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        connection.eventloop.set_network_options(net);
        let shared = Arc::new(Shared {
            outbox: Mutex::new(Outbox::default()),
            dropped: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            state: Mutex::new(
                cameras
                    .iter()
                    .map(|c| (c.clone(), "clear".to_string()))
                    .collect(),
            ),
        });
        let thread = {
            let (shared, client, prefix) = (shared.clone(), client.clone(), prefix.clone());
            std::thread::Builder::new()
                .name("hood-mqtt".into())
                .spawn(move || drive(connection, client, &shared, &prefix))
                .map_err(MqttError::Thread)?
        };
        let m = Mqtt {
            shared,
            client,
            thread: Some(thread),
            describe: format!(
                "MQTT {}://{host}:{port} prefix {prefix}",
                if tls { "mqtts" } else { "mqtt" }
            ),
            prefix,
            cameras,
        };
        m.push(
            &format!("{}/status", m.prefix),
            b"online".to_vec(),
            true,
            false,
        );
        for c in &m.cameras {
            m.push(&m.state_topic(c), b"clear".to_vec(), true, false);
        }
        Ok(m)
    }

    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn state_topic(&self, camera: &str) -> String {
        format!("{}/{camera}/state", self.prefix)
    }

    fn push(&self, topic: &str, payload: Vec<u8>, retain: bool, health: bool) {
        let m = Message {
            topic: topic.to_string(),
            payload,
            retain,
            health,
        };
        let before = self.shared.dropped.load(Ordering::Relaxed);
        self.shared.outbox().push(m, &self.shared.dropped);
        if self.shared.dropped.load(Ordering::Relaxed) > before {
            log::error!(
                "MQTT outbox full ({OUTBOX_LIMIT} messages while the broker is away): oldest dropped"
            );
        }
    }

    /// A transition: its event JSON (as written to events.jsonl) and the new retained state.
    /// The camera is the event's `camera` field (the first camera when it has none).
    pub fn transition(&self, event: &Value, state: &str) {
        let camera = event["camera"]
            .as_str()
            .map(topic_level)
            .filter(|c| self.cameras.contains(c))
            .or_else(|| self.cameras.first().cloned())
            .unwrap_or_else(|| "cam0".into());
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(camera.clone(), state.to_string());
        let topic = format!("{}/{camera}/event", self.prefix);
        self.push(&topic, event.to_string().into_bytes(), false, false);
        self.push(
            &self.state_topic(&camera),
            state.as_bytes().to_vec(),
            true,
            false,
        );
    }

    pub fn health(&self, health: &Value) {
        let topic = format!("{}/health", self.prefix);
        self.push(&topic, health.to_string().into_bytes(), false, true);
    }

    /// Messages waiting for the broker, and messages dropped because the outbox was full.
    pub fn backlog(&self) -> (usize, u64) {
        (
            self.shared.outbox().waiting.len(),
            self.shared.dropped.load(Ordering::Relaxed),
        )
    }

    /// A clean stop: `offline` on the status topic, then up to `wait` for the outbox to drain.
    pub fn close(mut self, wait: Duration) {
        self.push(
            &format!("{}/status", self.prefix),
            b"offline".to_vec(),
            true,
            false,
        );
        let t0 = Instant::now();
        while t0.elapsed() < wait && !self.shared.outbox().waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (left, _) = self.backlog();
        if left > 0 {
            log::warn!("MQTT: {left} message(s) not acknowledged by the broker at exit");
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long the connection thread waits for network events before looking at the outbox.
const POLL: Duration = Duration::from_millis(10);
/// The same while (re)connecting: long enough for a whole TCP + TLS handshake.
const CONNECT_POLL: Duration = Duration::from_secs(2);

/// The connection thread: drives rumqttc, hands the outbox over while connected, matches packet
/// ids to messages, retires acknowledged ones, reconnects with backoff.
fn drive(mut conn: Connection, client: Client, shared: &Shared, prefix: &str) {
    let mut delay = Duration::from_millis(200);
    let mut warned = false;
    while !shared.stop.load(Ordering::SeqCst) {
        // The outbox is handed over between polls: a short poll keeps an alert's delay to the
        // broker at a few ms (10 ms: 100 idle wake-ups a second, no measurable CPU). While not
        // connected the poll is long: a timeout drops rumqttc's connection attempt, and a TCP +
        // TLS handshake on a busy machine can take longer than 10 ms.
        let poll = if shared.connected.load(Ordering::SeqCst) {
            POLL
        } else {
            CONNECT_POLL
        };
        match conn.recv_timeout(poll) {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                log::info!("MQTT connected");
                warned = false;
                delay = Duration::from_millis(200);
                let states = shared
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let mut ob = shared.outbox();
                ob.reset();
                // After a broker restart the retained topics are gone: set them again first.
                let d = &shared.dropped;
                ob.push(msg(&format!("{prefix}/status"), b"online", true), d);
                for (camera, state) in &states {
                    ob.push(
                        msg(&format!("{prefix}/{camera}/state"), state.as_bytes(), true),
                        d,
                    );
                }
                shared.connected.store(true, Ordering::SeqCst);
            }
            Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                let mut ob = shared.outbox();
                if let Some(seq) = ob.handed.pop_front() {
                    ob.inflight.insert(pkid, seq);
                }
            }
            Ok(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                let mut ob = shared.outbox();
                if let Some(seq) = ob.inflight.remove(&ack.pkid) {
                    ob.waiting.remove(&seq);
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                shared.connected.store(false, Ordering::SeqCst);
                shared.outbox().reset();
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if !warned {
                    log::warn!("MQTT: {e}; retrying (messages wait in the outbox)");
                    warned = true;
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(rumqttc::RecvTimeoutError::Timeout) => {}
            Err(rumqttc::RecvTimeoutError::Disconnected) => break,
        }
        if shared.connected.load(Ordering::SeqCst) {
            let batch = shared.outbox().take_unhanded();
            for (seq, m) in batch {
                shared.outbox().handed.push_back(seq);
                if client
                    .try_publish(m.topic, QoS::AtLeastOnce, m.retain, m.payload)
                    .is_err()
                {
                    // The request queue is full: hand the rest over on a later turn.
                    let mut ob = shared.outbox();
                    ob.handed.pop_back();
                    ob.handed_upto = seq.checked_sub(1);
                    break;
                }
            }
        }
    }
}

fn msg(topic: &str, payload: &[u8], retain: bool) -> Message {
    Message {
        topic: topic.to_string(),
        payload: payload.to_vec(),
        retain,
        health: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports() {
        assert_eq!(
            parse_url("mqtt://broker").unwrap(),
            (false, "broker".into(), 1883)
        );
        assert_eq!(
            parse_url("mqtts://b.local:8884/").unwrap(),
            (true, "b.local".into(), 8884)
        );
        assert_eq!(
            parse_url("mqtt://[::1]:1999").unwrap(),
            (false, "::1".into(), 1999)
        );
        for bad in [
            "http://x",
            "mqtt://",
            "mqtt://u:p@h",
            "mqtt://h:99999",
            "mqtt://h/path",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topic_levels_lose_wildcards() {
        assert_eq!(topic_level("front door"), "front door");
        assert_eq!(topic_level("a/b+#"), "a_b__");
        assert_eq!(topic_level(""), "_");
    }

    #[test]
    fn the_outbox_keeps_one_unsent_health_message_and_resends_after_a_reset() {
        let d = AtomicU64::new(0);
        let mut ob = Outbox::default();
        ob.push(msg("t/event", b"1", false), &d);
        let h = |p: &[u8]| Message {
            health: true,
            ..msg("t/health", p, false)
        };
        ob.push(h(b"a"), &d);
        ob.push(h(b"b"), &d);
        let all: Vec<_> = ob
            .take_unhanded()
            .into_iter()
            .map(|(_, m)| m.payload)
            .collect();
        assert_eq!(all, vec![b"1".to_vec(), b"b".to_vec()]);
        assert!(ob.take_unhanded().is_empty(), "handed once per connection");
        ob.reset();
        assert_eq!(
            ob.take_unhanded().len(),
            2,
            "unacknowledged messages go again"
        );
        assert_eq!(d.load(Ordering::Relaxed), 0);
    }
}
