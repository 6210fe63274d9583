//! The reconnecting session loop: connect, log in (in the wire protocol
//! `pick` chooses), register proxies, keep the control channel alive and
//! spawn work connections; on any failure, report it, wait (capped
//! backoff with jitter, 1 s → 10 s) and start over with the same run id
//! so frps replaces the stale session at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::aead::Algorithm;
use super::control::{Control, Host};
use super::crypto;
use super::msg::{Message, Wire};
use super::pick::Pick;
use super::status::Status;
use super::transport::{self, Channel, Dialer};
use super::v2::V2;
use super::wire::{ControlWire, V1};
use super::work;
use crate::backoff::Backoff;
use crate::config::tunnel::{Proxy, Settings};

/// frp's timestamps are Go int64 seconds.
fn unix_now() -> i64 {
    crate::wallclock::unix_now() as i64
}

/// 0–25 % extra, so a fleet that lost the VPS does not return in lockstep.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = aws_lc_rs::rand::fill(&mut b);
    d + d.mul_f64(u16::from_le_bytes(b) as f64 / u16::MAX as f64 / 4.0)
}

pub type Shared = Arc<Mutex<Status>>;

/// Starts the tunnel; it runs until `stop` turns true.
pub fn spawn(s: Settings, stop: watch::Receiver<bool>) -> (Shared, tokio::task::JoinHandle<()>) {
    let status = Arc::new(Mutex::new(Status::new(&s)));
    let task = tokio::spawn(run(s, status.clone(), stop));
    (status, task)
}

async fn run(s: Settings, status: Shared, mut stop: watch::Receiver<bool>) {
    let dialer = match Dialer::new(&s) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            log::error!("tunnel: {e}");
            status.lock().unwrap().failed(e);
            return;
        }
    };
    let mut run_id = s
        .run_id_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|r| r.trim().to_string())
        .unwrap_or_default();
    let mut memory = Memory::load(&s);
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
    loop {
        let mut progress = Progress::NoAnswer;
        let wire = memory.pick.wire(unix_now());
        let mut sess = Session {
            wire,
            run_id: &mut run_id,
            memory: &mut memory,
            progress: &mut progress,
        };
        let r = session(&s, &dialer, &mut sess, &status, &mut stop).await;
        let delay = match (r, progress) {
            (Ok(()), _) => {
                status.lock().unwrap().disconnected(None);
                return;
            }
            (Err(e), Progress::HungUp(refused)) => {
                let again = memory.refused(refused);
                log::warn!("tunnel: {e}");
                status.lock().unwrap().disconnected(Some(e));
                if again {
                    let next = memory.pick.wire(unix_now());
                    log::info!(
                        "tunnel: trying frp wire {} with {}{}",
                        next.name(),
                        dialer.server(),
                        if next == Wire::V1 {
                            "; v2 again in a day"
                        } else {
                            ""
                        }
                    );
                    continue;
                }
                retry_delay(Progress::Answered, &mut backoff)
            }
            (Err(e), _) => {
                log::warn!("tunnel: {e}");
                status.lock().unwrap().disconnected(Some(e));
                retry_delay(progress, &mut backoff)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// How far a failed session got.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Progress {
    /// Nothing answered: the path is down (the dial itself spent the wait).
    NoAnswer,
    /// frps (or something at its address) answered, then it failed.
    Answered,
    /// It closed the connection on our Login in this wire protocol
    /// without a word: at v2's magic, an frps before 0.69; at v1's, one
    /// that has dropped v1.
    HungUp(Wire),
    LoggedIn,
}

/// What the wire protocol choice knows, and the file it is kept in
/// (beside the run id).
struct Memory {
    pick: Pick,
    file: Option<std::path::PathBuf>,
}

impl Memory {
    fn load(s: &Settings) -> Memory {
        let file = s.run_id_file.as_ref().map(|f| f.with_file_name("frp-wire"));
        let text = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok());
        let server = format!("{}:{}", s.server_addr, s.server_port);
        Memory {
            pick: Pick::new(s.wire, &server, text.as_deref()),
            file,
        }
    }

    fn keep(&self, text: Option<String>) {
        if let (Some(f), Some(t)) = (&self.file, text)
            && let Err(e) = std::fs::write(f, t)
        {
            log::debug!("tunnel: keeping the wire protocol in {}: {e}", f.display());
        }
    }

    /// True when the next attempt should go at once, in the other wire.
    fn refused(&mut self, wire: Wire) -> bool {
        let t = match wire {
            Wire::V2 => self.pick.v2_refused(unix_now()),
            Wire::V1 => self.pick.v1_refused(),
        };
        let changed = t.is_some();
        self.keep(t);
        changed
    }
}

/// One attempt's inputs and what it reports back.
struct Session<'a> {
    wire: Wire,
    run_id: &'a mut String,
    memory: &'a mut Memory,
    progress: &'a mut Progress,
}

/// Backoff protects frps from a fleet that keeps failing against it; a
/// path that is down costs frps nothing, so it is probed about once a
/// second and the tunnel returns within a second or two of the network.
fn retry_delay(p: Progress, backoff: &mut Backoff) -> Duration {
    match p {
        Progress::LoggedIn => {
            // The path worked a moment ago: try again right away.
            backoff.reset();
            Duration::from_millis(200)
        }
        Progress::NoAnswer => Duration::from_millis(500),
        Progress::Answered | Progress::HungUp(_) => jitter(backoff.next_delay()),
    }
}

async fn session(
    s: &Settings,
    dialer: &Arc<Dialer>,
    sess: &mut Session<'_>,
    status: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let (progress, run_id) = (&mut *sess.progress, &mut *sess.run_id);
    status.lock().unwrap().connecting();
    let (mut ch, opener, mux_task) = transport::connect(dialer, s).await.map_err(|e| {
        if !e.path_down {
            *progress = Progress::Answered;
        }
        e.msg
    })?;
    *progress = Progress::Answered;
    let mut mux_task = MuxGuard(mux_task);
    let mut control = Control::new(s, run_id.clone(), Instant::now().into_std());
    let key = crypto::derive_key(s.token.expose());
    let mut wire: Box<dyn ControlWire> = match sess.wire {
        Wire::V1 => Box::new(V1::new(&key)),
        Wire::V2 => Box::new(V2::client(
            s.token.expose(),
            s.tls.enable,
            s.tcp_mux,
            &Algorithm::preferred(),
        )),
    };
    ch.send(wire.seal(&control.login(&Host::this(), unix_now())))
        .await
        .map_err(|e| format!("sending login: {e}"))?;

    // Messages that arrived with the LoginResp are handled after it.
    let mut msgs: Vec<Message>;
    let deadline = Instant::now() + super::control::LOGIN_TIMEOUT;
    let mut answered = false;
    let resp = loop {
        let d = tokio::time::timeout_at(deadline, ch.recv())
            .await
            .map_err(|_| super::control::Error::LoginTimeout.to_string())?;
        let d = match d {
            Ok(Some(d)) => d,
            // Not a byte back to v2's magic: an frps from before 0.69.
            Ok(None) | Err(_) if sess.wire == Wire::V2 && !answered => {
                *progress = Progress::HungUp(Wire::V2);
                return Err(format!(
                    "{} closed the connection at frp wire v2's magic (frps older than 0.69)",
                    dialer.server()
                ));
            }
            Ok(None) | Err(_) if !answered => {
                *progress = Progress::HungUp(Wire::V1);
                return Err(format!(
                    "{} closed the connection on a wire v1 login without an answer",
                    dialer.server()
                ));
            }
            Ok(None) => return Err("frps closed the connection during login".into()),
            Err(e) => return Err(format!("waiting for login answer: {e}")),
        };
        answered = true;
        msgs = wire.open(&d)?;
        if msgs.is_empty() {
            continue;
        }
        match msgs.remove(0) {
            Message::LoginResp(r) => break r,
            m => {
                return Err(format!(
                    "expected LoginResp, got '{}'",
                    m.type_byte() as char
                ));
            }
        }
    };
    control
        .handle_login_resp(resp, Instant::now().into_std())
        .map_err(|e| e.to_string())?;
    *progress = Progress::LoggedIn;
    if *run_id != control.run_id {
        *run_id = control.run_id.clone();
        save_run_id(s, run_id);
    }
    let noted = sess.memory.pick.logged_in(sess.wire);
    sess.memory.keep(noted);
    let aead = wire.aead();
    log::info!(
        "tunnel: logged in to {} (run id {run_id}, frp wire {}{})",
        dialer.server(),
        sess.wire.name(),
        aead.map(|a| format!(", {a}")).unwrap_or_default()
    );
    status.lock().unwrap().wire_in_use(sess.wire, aead);

    let proxies: Arc<HashMap<String, Proxy>> = Arc::new(
        s.proxies
            .iter()
            .map(|p| (s.wire_name(&p.name), p.clone()))
            .collect(),
    );
    let mut workers = JoinSet::new();
    let udp_relays = work::UdpRelays::default();
    status.lock().unwrap().connected();
    loop {
        for m in msgs.drain(..) {
            control
                .handle(m, Instant::now().into_std())
                .map_err(|e| e.to_string())?;
        }
        send_pending(&mut control, &mut ch, &mut *wire).await?;
        while control.take_work_request() {
            workers.spawn(work::serve(work::Work {
                opener: opener.clone(),
                hello: control.new_work_conn(unix_now()),
                wire: sess.wire,
                proxies: proxies.clone(),
                key,
                udp_relays: udp_relays.clone(),
            }));
        }
        status.lock().unwrap().update(&control);
        let wake = Instant::from_std(control.poll_timeout());
        tokio::select! {
            d = ch.recv() => match d {
                Ok(Some(d)) => msgs = wire.open(&d)?,
                Ok(None) => return Err("frps closed the control connection".into()),
                Err(e) => return Err(format!("control connection: {e}")),
            },
            _ = tokio::time::sleep_until(wake) => {
                control
                    .handle_timeout(Instant::now().into_std(), unix_now())
                    .map_err(|e| e.to_string())?;
            }
            Some(done) = workers.join_next() => log_work(done),
            why = mux_task.wait() => return Err(why),
            _ = stop.changed() => {
                // Release the public ports now rather than at frps's timeout.
                control.close_all();
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    send_pending(&mut control, &mut ch, &mut *wire),
                )
                .await;
                return Ok(());
            }
        }
    }
}

async fn send_pending(
    control: &mut Control,
    ch: &mut Channel,
    wire: &mut dyn ControlWire,
) -> Result<(), String> {
    while let Some(m) = control.poll_message() {
        ch.send(wire.seal(&m))
            .await
            .map_err(|e| format!("control connection: {e}"))?;
    }
    Ok(())
}

fn log_work(done: Result<Result<Option<String>, String>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(Some(what))) => log::debug!("tunnel: connection for {what} finished"),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => log::warn!("tunnel: {e}"),
        Err(e) => log::warn!("tunnel: work connection task: {e}"),
    }
}

fn save_run_id(s: &Settings, run_id: &str) {
    if let Some(f) = &s.run_id_file
        && let Err(e) = std::fs::write(f, run_id)
    {
        log::debug!("tunnel: keeping run id in {}: {e}", f.display());
    }
}

/// Aborts the mux task with the session; waits for it when there is one.
struct MuxGuard(Option<tokio::task::JoinHandle<String>>);

impl MuxGuard {
    async fn wait(&mut self) -> String {
        match &mut self.0 {
            Some(t) => t.await.unwrap_or_else(|e| e.to_string()),
            None => std::future::pending().await,
        }
    }
}

impl Drop for MuxGuard {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answered_failures_back_off() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let ms = |d: Duration| d.as_millis();
        let answered: Vec<_> = (0..6)
            .map(|_| ms(retry_delay(Progress::Answered, &mut b)))
            .collect();
        // 1, 2, 4, 8, 10, 10 s plus up to 25 % jitter.
        for (got, base) in answered.iter().zip([1000, 2000, 4000, 8000, 10000, 10000]) {
            assert!((base..=base * 5 / 4).contains(got), "{answered:?}");
        }
        // An outage is probed at a steady pace and does not grow the backoff.
        assert_eq!(ms(retry_delay(Progress::NoAnswer, &mut b)), 500);
        assert_eq!(ms(retry_delay(Progress::LoggedIn, &mut b)), 200);
        let next = ms(retry_delay(Progress::Answered, &mut b));
        assert!((1000..=1250).contains(&next), "reset after a login: {next}");
    }
}
