//! `hood-watch --mqtt` against a real broker (Debian's `mosquitto`, started by the test on a free
//! loopback port; feature `mqtt`). A subscriber checks that every transition arrives exactly as
//! its line in `events.jsonl`, with the retained state and status topics; the broker is stopped
//! before the alert is raised and started again after it, and the messages still arrive.
#![cfg(feature = "mqtt")]

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hood-watch");
const PREFIX: &str = "hood/test-device";
/// Started as root, mosquitto drops to its own user, which cannot read the test's private
/// temporary folder (persistence, keys); `user root` keeps it as it is (no effect otherwise).
const USER: &str = "user root\n";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// mosquitto on 127.0.0.1:port with persistence in `dir` (so the subscriber's session, and the
/// messages queued for it, survive a stop and start, as on a real broker's restart).
struct Broker {
    child: Child,
}

impl Broker {
    fn start(dir: &Path, port: u16) -> Broker {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "{USER}listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto (Debian package mosquitto)");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "mosquitto did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker { child }
    }

    /// SIGTERM (mosquitto saves its persistence file), then wait for it.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (topic, payload, retained, arrival in seconds since the Unix epoch).
type Received = Arc<Mutex<Vec<(String, Vec<u8>, bool, f64)>>>;

/// A subscriber to `PREFIX/#` with a persistent session, reconnecting by itself.
fn subscribe(port: u16) -> (Received, Arc<std::sync::atomic::AtomicBool>) {
    let mut opts = MqttOptions::new("hood-test-subscriber", "127.0.0.1", port);
    opts.set_clean_session(false);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = Client::new(opts, 16);
    let got: Received = Arc::default();
    let subscribed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (g, s) = (got.clone(), subscribed.clone());
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe(format!("{PREFIX}/#"), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    s.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let at = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs_f64();
                    g.lock()
                        .unwrap()
                        .push((p.topic.clone(), p.payload.to_vec(), p.retain, at));
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    (got, subscribed)
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// 16 ID, 12 OOD, 16 ID sample frames as numbered files.
fn feed(dir: &Path) -> PathBuf {
    let id = [
        "cifar10-airplane-0000.jpg",
        "cifar10-automobile-0001.jpg",
        "cifar10-bird-0003.jpg",
        "cifar10-cat-0000.jpg",
        "cifar10-dog-0000.jpg",
        "cifar10-horse-0000.jpg",
        "cifar10-ship-0000.jpg",
        "cifar10-truck-0000.jpg",
    ];
    let ood = [
        "dtd-banded.jpg",
        "tinyimagenet-seashore.jpg",
        "dtd-cracked.jpg",
        "fmnist-trouser.png",
        "dtd-chequered.jpg",
        "tinyimagenet-plaque.jpg",
    ];
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
    let out = dir.join("feed");
    std::fs::create_dir_all(&out).unwrap();
    let order = id
        .iter()
        .chain(&id)
        .chain(&ood)
        .chain(&ood)
        .chain(&id)
        .chain(&id);
    for (i, name) in order.enumerate() {
        let ext = Path::new(name).extension().unwrap().to_str().unwrap();
        std::fs::copy(samples.join(name), out.join(format!("{i:03}.{ext}"))).unwrap();
    }
    out
}

#[test]
fn transitions_reach_the_broker_even_when_it_was_down_at_the_alert() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir_all(&broker_dir).unwrap();
    let broker = Broker::start(&broker_dir, port);
    let (got, subscribed) = subscribe(port);
    wait_for("the subscription", Duration::from_secs(20), || {
        subscribed.load(std::sync::atomic::Ordering::SeqCst)
    });

    let frames = feed(dir.path());
    let out = dir.path().join("out");
    let events_path = out.join("events.jsonl");
    let mut watch = Command::new(BIN)
        .arg("--input")
        .arg(&frames)
        .args(["--fps", "5", "--backend", "cpu", "--threads", "2"])
        .args(["--health-interval", "0.5", "--name", "front door"])
        .args(["--mqtt", &format!("mqtt://127.0.0.1:{port}")])
        .args(["--mqtt-prefix", PREFIX])
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let has = |topic: &str, payload: &[u8]| {
        got.lock()
            .unwrap()
            .iter()
            .any(|(t, p, _, _)| t == topic && p == payload)
    };
    let status = format!("{PREFIX}/status");
    wait_for("status online", Duration::from_secs(30), || {
        has(&status, b"online")
    });
    // The broker goes away before the OOD segment (frame 16, ~3 s in at 5 fps) ...
    broker.stop();
    let raised = |ev: &[Value]| ev.iter().any(|e| e["event"] == "raised");
    wait_for("the alert", Duration::from_secs(60), || {
        raised(&events(&events_path))
    });
    // ... and comes back once the alert has been raised.
    let _broker = Broker::start(&broker_dir, port);
    let st = watch.wait().unwrap();
    assert!(st.success(), "{st:?}");

    let log = events(&events_path);
    let transitions: Vec<&Value> = log
        .iter()
        .filter(|e| e["event"] == "raised" || e["event"] == "cleared")
        .collect();
    assert_eq!(transitions.len(), 2, "{log:#?}");
    let event_topic = format!("{PREFIX}/front door/event");
    wait_for("both transitions", Duration::from_secs(30), || {
        let g = got.lock().unwrap();
        transitions.iter().all(|t| {
            g.iter().any(|(topic, p, _, _)| {
                topic == &event_topic
                    && serde_json::from_slice::<Value>(p).ok().as_ref() == Some(*t)
            })
        })
    });
    // Only these transitions, in order (QoS 1 may repeat a message, never reorder or invent).
    let g = got.lock().unwrap().clone();
    let mut seen: Vec<Value> = Vec::new();
    for (topic, p, _, _) in &g {
        if topic == &event_topic {
            let v: Value = serde_json::from_slice(p).unwrap();
            if seen.last() != Some(&v) && !seen.contains(&v) {
                seen.push(v);
            }
        }
    }
    let expected: Vec<Value> = transitions.into_iter().cloned().collect();
    assert_eq!(seen, expected);
    // The retained state ends `clear`; health numbers arrived; a clean stop said `offline`.
    let state_topic = format!("{PREFIX}/front door/state");
    let last_state = g
        .iter()
        .rev()
        .find(|(t, _, _, _)| t == &state_topic)
        .unwrap();
    assert_eq!(last_state.1, b"clear");
    assert!(g
        .iter()
        .any(|(t, p, _, _)| t == &state_topic && p == b"alert"));
    let health_topic = format!("{PREFIX}/health");
    let health = g
        .iter()
        .find(|(t, _, _, _)| t == &health_topic)
        .expect("health");
    let h: Value = serde_json::from_slice(&health.1).unwrap();
    assert!(h["frames"].is_u64(), "{h}");
    wait_for("status offline", Duration::from_secs(10), || {
        got.lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(t, _, _, _)| t == &status)
            .is_some_and(|(_, p, _, _)| p == b"offline")
    });
}

/// A daemon that dies without a clean stop: the broker publishes its last will, `offline`.
#[test]
fn a_killed_daemon_is_marked_offline_by_its_last_will() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(dir.path(), port);
    let (got, subscribed) = subscribe(port);
    wait_for("the subscription", Duration::from_secs(20), || {
        subscribed.load(std::sync::atomic::Ordering::SeqCst)
    });
    let frames = feed(dir.path());
    let mut watch = Command::new(BIN)
        .arg("--input")
        .arg(&frames)
        .args(["--loop", "--fps", "5", "--backend", "cpu"])
        .args(["--mqtt", &format!("mqtt://127.0.0.1:{port}")])
        .args(["--mqtt-prefix", PREFIX])
        .arg("--out")
        .arg(dir.path().join("out"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("{PREFIX}/status");
    let last_status = || {
        got.lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(t, _, _, _)| t == &status)
            .map(|(_, p, _, _)| p.clone())
    };
    wait_for("online", Duration::from_secs(30), || {
        last_status().as_deref() == Some(b"online")
    });
    watch.kill().unwrap();
    watch.wait().unwrap();
    // The broker notices within 1.5 keep-alives (5 s) or at once on the closed socket.
    wait_for("the last will", Duration::from_secs(20), || {
        last_status().as_deref() == Some(b"offline")
    });
}

fn run(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A test CA and a server certificate for 127.0.0.1 / localhost, made with openssl.
fn certificates(dir: &Path) {
    let d = |f: &str| dir.join(f);
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=hood-test-ca", "-keyout"])
        .arg(d("ca.key"))
        .arg("-out")
        .arg(d("ca.pem")));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(d("server.key"))
        .arg("-out")
        .arg(d("server.csr")));
    std::fs::write(
        d("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-in"])
        .arg(d("server.csr"))
        .arg("-CA")
        .arg(d("ca.pem"))
        .arg("-CAkey")
        .arg(d("ca.key"))
        .args(["-CAcreateserial", "-out"])
        .arg(d("server.pem"))
        .arg("-extfile")
        .arg(d("ext.cnf")));
}

/// mqtts:// with a private CA and a user name + password file: the broker accepts hood (its
/// status arrives); with a wrong password it never does.
#[test]
fn tls_and_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    certificates(p);
    run(Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(p.join("passwd"))
        .args(["hood", "s3cret"]));
    let (tls_port, plain_port) = (free_port(), free_port());
    let conf = p.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "{USER}per_listener_settings true\n\
             listener {tls_port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n\
             cafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
             listener {plain_port} 127.0.0.1\nallow_anonymous true\n",
            pw = p.join("passwd").display(),
            ca = p.join("ca.pem").display(),
            cert = p.join("server.pem").display(),
            key = p.join("server.key").display(),
        ),
    )
    .unwrap();
    let mut broker = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(&mut broker);
    wait_for("mosquitto", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", plain_port)).is_ok()
    });
    // Watch what hood publishes through the plain listener (the same broker).
    let (got, subscribed) = subscribe(plain_port);
    wait_for("the subscription", Duration::from_secs(20), || {
        subscribed.load(std::sync::atomic::Ordering::SeqCst)
    });
    let frames = feed(p);
    let status = format!("{PREFIX}/status");
    for (password, prefix_ok) in [("wrong", false), ("s3cret", true)] {
        got.lock().unwrap().clear();
        std::fs::write(p.join("pw"), format!("{password}\n")).unwrap();
        let mut watch = Command::new(BIN)
            .arg("--input")
            .arg(&frames)
            .args(["--loop", "--fps", "5", "--backend", "cpu"])
            .args(["--mqtt", &format!("mqtts://localhost:{tls_port}")])
            .arg("--mqtt-ca")
            .arg(p.join("ca.pem"))
            .args(["--mqtt-username", "hood", "--mqtt-password-file"])
            .arg(p.join("pw"))
            .args(["--mqtt-prefix", PREFIX])
            .arg("--out")
            .arg(p.join("out"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let online = || {
            got.lock()
                .unwrap()
                .iter()
                .any(|(t, m, _, _)| t == &status && m == b"online")
        };
        if prefix_ok {
            wait_for("online over TLS", Duration::from_secs(30), online);
        } else {
            std::thread::sleep(Duration::from_secs(4));
            assert!(!online(), "a wrong password was accepted");
        }
        watch.kill().unwrap();
        watch.wait().unwrap();
    }
}

#[test]
fn bad_mqtt_options_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["--mqtt", "http://x"], "unknown scheme"),
        (vec!["--mqtt", "mqtt://u:p@h"], "--mqtt-password-file"),
        (vec!["--mqtt", "mqtts://h"], "needs --mqtt-ca"),
        (
            vec!["--mqtt", "mqtt://h", "--mqtt-prefix", "a/#"],
            "wildcard",
        ),
        (
            vec!["--mqtt", "mqtt://h", "--mqtt-password-file", "/nonexistent"],
            "needs --mqtt-username",
        ),
    ] {
        let o = Command::new(BIN)
            .args(&args)
            .arg("--out")
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn each_camera_of_a_multi_camera_config_has_its_own_topics() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(dir.path(), port);
    let (got, subscribed) = subscribe(port);
    wait_for("the subscription", Duration::from_secs(20), || {
        subscribed.load(std::sync::atomic::Ordering::SeqCst)
    });
    let frames = feed(dir.path());
    let out = dir.path().join("out");
    let cfg = dir.path().join("cams.toml");
    std::fs::write(
        &cfg,
        format!(
            "backend = \"cpu\"\nthreads = 1\nmqtt = \"mqtt://127.0.0.1:{port}\"\nmqtt-prefix = \"{PREFIX}\"\nout = \"{}\"\n\
             [[camera]]\nname = \"front\"\ninput = \"{}\"\n\
             [[camera]]\nname = \"back\"\ninput = \"{}\"\nthreshold = 1000.0\n",
            out.display(),
            frames.display(),
            frames.display()
        ),
    )
    .unwrap();
    run(Command::new(BIN).arg("--config").arg(&cfg));
    let ev = events(&out.join("events.jsonl"));
    let front: Vec<&Value> = ev
        .iter()
        .filter(|e| e["camera"] == "front" && (e["event"] == "raised" || e["event"] == "cleared"))
        .collect();
    assert_eq!(front.len(), 2, "{front:?}");
    assert!(!ev
        .iter()
        .any(|e| e["camera"] == "back" && e["event"] == "raised"));
    let topic = |t: &str| format!("{PREFIX}/{t}");
    wait_for("front's events", Duration::from_secs(20), || {
        got.lock()
            .unwrap()
            .iter()
            .filter(|m| m.0 == topic("front/event"))
            .count()
            == 2
    });
    let got = got.lock().unwrap();
    let published: Vec<Value> = got
        .iter()
        .filter(|m| m.0 == topic("front/event"))
        .map(|m| serde_json::from_slice(&m.1).unwrap())
        .collect();
    assert_eq!(published.iter().collect::<Vec<_>>(), front);
    // Frame to message at the subscriber: the event's own capture→decision time plus its write
    // time (`ts`) to the arrival (the same clock; printed for docs/BENCHMARKS.md).
    for m in got.iter().filter(|m| m.0 == topic("front/event")) {
        let e: Value = serde_json::from_slice(&m.1).unwrap();
        let ms =
            e["capture_to_decision_ms"].as_f64().unwrap() + (m.3 - e["ts"].as_f64().unwrap()) * 1e3;
        assert!(ms > 0.0 && ms < 10_000.0, "{ms}");
        eprintln!(
            "capture to MQTT arrival ({}): {ms:.1} ms, of which event written to arrival {:.1} ms",
            e["event"],
            (m.3 - e["ts"].as_f64().unwrap()) * 1e3
        );
    }
    // The retained state is set again at every (re)connection, so repeats are collapsed.
    let states = |cam: &str| -> Vec<String> {
        let mut v: Vec<String> = got
            .iter()
            .filter(|m| m.0 == topic(&format!("{cam}/state")))
            .map(|m| String::from_utf8(m.1.clone()).unwrap())
            .collect();
        v.dedup();
        v
    };
    assert_eq!(states("front"), ["clear", "alert", "clear"]);
    assert_eq!(states("back"), ["clear"]);
    assert!(!got.iter().any(|m| m.0 == topic("back/event")));
}
