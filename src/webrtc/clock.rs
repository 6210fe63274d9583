//! A path's RTP clocks (90 kHz video, 48 kHz Opus), continuous across
//! pipeline restarts.

/// Maps a pipeline's PTS to the path's RTP time. A restarted pipeline
/// starts its PTS again from zero; the RTP time must not jump back for
/// viewers who stay connected, so the clock rebases.
pub struct RtpClock {
    hz: u64,
    base: Option<(u64, u32)>,
    last: u32,
}

impl Default for RtpClock {
    fn default() -> Self {
        RtpClock {
            hz: 90_000,
            base: None,
            last: 0,
        }
    }
}

impl RtpClock {
    /// Opus's clock.
    pub fn audio() -> RtpClock {
        RtpClock {
            hz: 48_000,
            ..RtpClock::default()
        }
    }

    pub fn rtp_time(&mut self, pts_ns: u64) -> u32 {
        let (pts0, rtp0) = match self.base {
            Some((p, r)) if pts_ns >= p => (p, r),
            _ => {
                // A frame's worth (1/30 s) past the last time.
                let b = (pts_ns, self.last.wrapping_add((self.hz / 30) as u32));
                self.base = Some(b);
                b
            }
        };
        let t =
            rtp0.wrapping_add(((pts_ns - pts0) as u128 * self.hz as u128 / 1_000_000_000) as u32);
        self.last = t;
        t
    }

    /// The RTP time of another encode of the same capture (a rendition):
    /// the main stream's mapping, never re-based by it, so a viewer moving
    /// between layers sees one timeline.
    pub fn same_capture(&mut self, pts_ns: u64) -> u32 {
        let Some((pts0, rtp0)) = self.base else {
            return self.rtp_time(pts_ns);
        };
        let d = (i128::from(pts_ns) - i128::from(pts0)) * self.hz as i128 / 1_000_000_000;
        rtp0.wrapping_add(d as i64 as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_clock_is_90khz_and_survives_a_pipeline_restart() {
        let mut c = RtpClock::default();
        let a = c.rtp_time(5_000_000_000);
        assert_eq!(c.rtp_time(5_000_000_000 + 33_333_333).wrapping_sub(a), 2999);
        let before = c.rtp_time(6_000_000_000);
        // Restart: PTS back near zero; RTP time keeps going forward.
        let after = c.rtp_time(1_000_000);
        assert_eq!(after.wrapping_sub(before), 3000);
        assert_eq!(
            c.rtp_time(1_000_000 + 1_000_000_000).wrapping_sub(after),
            90_000
        );
    }

    #[test]
    fn a_rendition_shares_the_main_timeline_even_slightly_behind_it() {
        let mut c = RtpClock::default();
        let a = c.rtp_time(5_000_000_000);
        assert_eq!(c.same_capture(5_000_000_000), a);
        assert_eq!(c.same_capture(4_000_000_000), a.wrapping_sub(90_000));
        // ...and does not move the main stream's base.
        assert_eq!(c.rtp_time(6_000_000_000).wrapping_sub(a), 90_000);
    }
}
