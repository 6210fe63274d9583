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
        match self.step(bps, loss) {
            Some(Step::Move(m)) => Some(m),
            _ => None,
        }
    }

    fn step(&mut self, bps: u64, loss: f32) -> Option<Step> {
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
    assert_eq!(l.period(MAIN as u64, 0.15), None);
    assert!(l.run(10.0, MAIN as u64, 0.0).is_empty());
}

/// Until the next probe starts: its time from now and its filler rate.
fn until_probe(l: &mut Link, bps: u64) -> (f64, u64) {
    let t0 = l.t;
    loop {
        if let Some(Step::Probe { extra, .. }) = l.step(bps, 0.0) {
            return (l.t.duration_since(t0).as_secs_f64(), extra);
        }
        assert!(l.t < t0 + HOLD_MAX * 2, "no probe");
    }
}

#[test]
fn it_probes_with_filler_before_moving_up_and_backs_off_when_the_probe_fails() {
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(1.0, MAIN as u64, 0.0);
    l.run(3.0, 700_000, 0.7);
    assert_eq!(l.q.layer, Layer(1));
    // On the rendition the link is fine; after HOLD, filler worth the
    // difference to the main stream (and a little more), picture unchanged.
    let (after, extra) = until_probe(&mut l, LOW as u64);
    assert!(
        (HOLD.as_secs_f64()..HOLD.as_secs_f64() + 1.0).contains(&after),
        "{after}"
    );
    assert_eq!(extra, u64::from(MAIN - LOW) * 11 / 10);
    assert_eq!(l.q.layer, Layer(1));
    // The filler overloads the link: the probe ends, the layer stays.
    assert!(matches!(l.step(700_000, 0.4), Some(Step::ProbeFailed(_))));
    assert_eq!(l.q.layer, Layer(1));
    assert!(l.q.probe.is_none());
    // The next try waits twice as long.
    let (after, _) = until_probe(&mut l, LOW as u64);
    assert!(after >= 2.0 * HOLD.as_secs_f64(), "retried after {after} s");
}

#[test]
fn probe_filler_starts_within_what_the_link_carried_and_grows_slowly() {
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(1.0, MAIN as u64, 0.0);
    // 700 kbit/s sent with 10 % lost: 630 kbit/s got through.
    l.run(3.0, 700_000, 0.1);
    assert_eq!(l.q.layer, Layer(1));
    until_probe(&mut l, LOW as u64);
    let p = l.q.probe.unwrap();
    let known = 630_000.0 * FIT;
    assert!((p.rate_at(p.since) - (known - f64::from(LOW))).abs() < 1_000.0);
    let after = |s: f64| p.rate_at(p.since + Duration::from_secs_f64(s));
    assert!((after(1.0) - after(0.0) - PROBE_SLOPE).abs() < 1.0);
    // It ends at the full difference, held for PROBE_HOLD.
    assert_eq!(after(60.0), p.extra as f64);
    let full = (p.extra as f64 - after(0.0)) / PROBE_SLOPE;
    let want = full + PROBE_HOLD.as_secs_f64();
    assert!((p.length().as_secs_f64() - want).abs() < 0.01);
}

#[test]
fn a_probe_that_holds_moves_up_and_a_move_that_then_fails_comes_straight_back() {
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(3.0, 700_000, 0.7);
    assert_eq!(l.q.layer, Layer(1));
    until_probe(&mut l, LOW as u64);
    let length = l.q.probe.unwrap().length().as_secs_f64();
    let moves = l.run(length, LOW as u64 + 2_000_000, 0.0);
    assert_eq!(moves.iter().map(|m| m.1).collect::<Vec<_>>(), [Layer::MAIN]);
    // The main stream then meets loss: back down at once.
    assert_eq!(l.period(700_000, 0.5).map(|m| m.to), Some(Layer(1)));
}

#[test]
fn a_probe_that_holds_keeps_the_main_stream() {
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(3.0, 700_000, 0.7);
    assert_eq!(l.q.layer, Layer(1));
    // The link recovers: up after HOLD and a probe, and it stays up.
    until_probe(&mut l, LOW as u64);
    let length = l.q.probe.unwrap().length().as_secs_f64();
    l.run(length + 1.0, LOW as u64, 0.0);
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
    assert!(l.run(1.0, 1_200_000, 0.2).is_empty());
    assert!(l.run(5.0, 1_200_000, 0.0).is_empty());
    assert_eq!(l.q.layer, Layer(1));
}

#[test]
fn severe_loss_moves_down_on_one_report() {
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(2.0, MAIN as u64, 0.0);
    assert_eq!(l.period(700_000, 0.6).map(|m| m.to), Some(Layer(1)));
}

#[test]
fn a_twcc_estimate_alone_moves_nobody() {
    // GCC dips with nothing lost (a keyframe burst, a busy CPU).
    let mut l = Link::new(&[MAIN, LOW]);
    l.s.twcc = Some(1_000_000);
    assert!(l.run(10.0, MAIN as u64, 0.0).is_empty());
    // But when the link does lose, it bounds where the viewer lands.
    let mut l = Link::new(&[MAIN, 1_200_000, LOW]);
    l.run(1.0, MAIN as u64, 0.0);
    l.s.twcc = Some(900_000);
    let moves = l.run(2.0, 2_000_000, 0.1);
    assert_eq!(moves.iter().map(|m| m.1).collect::<Vec<_>>(), [Layer(2)]);
}

#[test]
fn with_twcc_a_probe_stops_the_moment_the_estimate_falls() {
    let mut l = Link::new(&[MAIN, LOW]);
    l.run(3.0, 700_000, 0.7);
    l.s.twcc = Some(900_000);
    let (_, extra) = until_probe(&mut l, LOW as u64);
    assert!(extra > 0, "filler, not str0m's short probes");
    let t = l.t + Duration::from_millis(100);
    assert_eq!(l.q.on_estimate(880_000, t), None, "a wobble");
    assert!(matches!(
        l.q.on_estimate(700_000, t),
        Some(Step::ProbeFailed(_))
    ));
    assert!(l.q.probe.is_none());
    assert_eq!(l.q.layer, Layer(1));
}
