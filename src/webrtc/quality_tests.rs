use super::*;

const MAIN: u32 = 2_500_000;
const LOW: u32 = 500_000;

/// A viewer fed one report every 500 ms from `t`.
struct Link {
    q: Quality,
    t: Instant,
    s: Sample,
}

impl Link {
    fn new(bitrates: &[u32]) -> Link {
        let t = Instant::now();
        Link {
            q: Quality::new(bitrates.to_vec(), t),
            t,
            s: Sample {
                rtt: Some(Duration::from_millis(20)),
                ..Sample::default()
            },
        }
    }

    /// Half a second at `bps` delivered with `loss`; the move it caused.
    fn period(&mut self, bps: u64, loss: f32) -> Option<Move> {
        self.t += Duration::from_millis(500);
        self.s.bytes += bps / 16;
        self.s.packets += bps / 16 / 1200;
        self.s.loss = Some(loss);
        self.q.on_sample(self.s, self.t)
    }

    /// Run `secs` of periods; every move made.
    fn run(&mut self, secs: f64, bps: u64, loss: f32) -> Vec<(f64, Layer)> {
        let start = self.t;
        let mut moves = vec![];
        while self.t < start + Duration::from_secs_f64(secs) {
            if let Some(m) = self.period(bps, loss) {
                moves.push((self.t.duration_since(start).as_secs_f64(), m.to));
            }
        }
        moves
    }
}

#[test]
fn a_good_link_stays_on_the_main_stream() {
    let mut l = Link::new(&[MAIN, LOW]);
    assert!(l.run(60.0, MAIN as u64, 0.0).is_empty());
    assert_eq!(l.q.layer, Layer::MAIN);
}

#[test]
fn sustained_loss_moves_down_within_two_seconds_to_what_fits() {
    let mut l = Link::new(&[MAIN, 1_200_000, LOW]);
    l.run(5.0, MAIN as u64, 0.0);
    // A 700 kbit/s link: most of the main stream is lost.
    let moves = l.run(10.0, 700_000, 0.7);
    assert_eq!(moves.len(), 1, "{moves:?}");
    let (at, to) = moves[0];
    assert!(at <= 2.0, "moved after {at} s");
    assert_eq!(
        to,
        Layer(2),
        "700 kbit/s delivered fits only the 500 kbit/s layer"
    );
    assert!(l.q.estimate.unwrap() < 700_000);
}

#[test]
fn a_single_bad_report_is_not_congestion() {
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(2.0, MAIN as u64, 0.0);
    assert_eq!(l.period(MAIN as u64, 0.3), None);
    assert!(l.run(10.0, MAIN as u64, 0.0).is_empty());
}

#[test]
fn it_probes_up_after_a_quiet_spell_and_backs_off_when_the_probe_fails() {
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(1.0, MAIN as u64, 0.0);
    l.run(3.0, 700_000, 0.7);
    assert_eq!(l.q.layer, Layer(1));
    // On the rendition the 700 kbit/s link is fine; after HOLD it tries up.
    let moves = l.run(HOLD.as_secs_f64() + 1.0, LOW as u64, 0.0);
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(moves[0].1, Layer::MAIN);
    // The probe fails at once: straight back down, without waiting DOWN_AFTER.
    assert_eq!(l.period(700_000, 0.6).map(|m| m.to), Some(Layer(1)));
    // The next try waits twice as long.
    let moves = l.run(2.0 * HOLD.as_secs_f64() + 1.0, LOW as u64, 0.0);
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert!(
        moves[0].0 >= 2.0 * HOLD.as_secs_f64() - 0.5,
        "retried after {} s",
        moves[0].0
    );
}

#[test]
fn a_probe_that_holds_keeps_the_main_stream() {
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(3.0, 700_000, 0.7);
    assert_eq!(l.q.layer, Layer(1));
    // The link recovers: up after HOLD, and it stays up.
    l.run(HOLD.as_secs_f64() + 1.0, LOW as u64, 0.0);
    assert_eq!(l.q.layer, Layer::MAIN);
    assert!(l.run(60.0, MAIN as u64, 0.0).is_empty());
}

#[test]
fn a_transport_that_falls_behind_is_congestion_without_loss() {
    // ICE-TCP: TCP repairs every loss, so the sign is the queue.
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(2.0, MAIN as u64, 0.0);
    l.s.fell_behind = true;
    let moves = l.run(3.0, 700_000, 0.0);
    assert_eq!(moves.first().map(|m| m.1), Some(Layer(1)), "{moves:?}");
}

#[test]
fn a_growing_rtt_is_congestion() {
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(2.0, MAIN as u64, 0.0);
    l.s.rtt = Some(Duration::from_millis(400));
    let moves = l.run(3.0, MAIN as u64, 0.0);
    assert_eq!(moves.first().map(|m| m.1), Some(Layer(1)), "{moves:?}");
}

#[test]
fn the_lowest_layer_has_nowhere_to_go() {
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(3.0, 300_000, 0.7);
    assert_eq!(l.q.layer, Layer(1));
    assert!(l.run(5.0, 300_000, 0.7).is_empty());
}

#[test]
fn reports_about_the_old_layer_do_not_move_it_down_twice() {
    let mut l = Link::new(&[MAIN, 1_200_000, LOW]);
    l.run(2.0, MAIN as u64, 0.0);
    // 1.8 Mbit/s sent, 10 % lost: 1.6 Mbit/s got through; one step fits.
    let moves = l.run(2.0, 1_800_000, 0.1);
    assert_eq!(moves.iter().map(|m| m.1).collect::<Vec<_>>(), [Layer(1)]);
    // The next second's reports still show the old layer's loss.
    assert!(l.run(1.0, 1_200_000, 0.3).is_empty());
    assert!(l.run(5.0, 1_200_000, 0.0).is_empty());
    assert_eq!(l.q.layer, Layer(1));
}
