//! A path's sound: where it comes from (the HDMI receiver's own ALSA card,
//! found by name as its video node is; an explicit device; a test tone)
//! and the pipeline branch that encodes it once to Opus for the hub.
//! Sans-IO apart from reading the card list, which the caller passes in.

use crate::config::audio::Audio;
use crate::config::{PathConfig, Source};

/// The kernel's list of sound cards.
pub const CARDS: &str = "/proc/asound/cards";

/// A path's audio branch, ready to join its pipeline.
#[derive(Debug, PartialEq)]
pub struct Branch {
    /// Source → Opus → `appsink name=asink`.
    pub launch: String,
    /// For status: "48 kHz stereo, hw:CARD=rockchiphdmiin".
    pub label: String,
}

/// What the path sends: a branch, nothing (off, or no sound of its kind),
/// or why the configured sound is missing (video goes on without it).
#[derive(Debug, PartialEq)]
pub enum Plan {
    Sound(Branch),
    Silent,
    Missing(String),
}

/// The RK3588 BSP names the HDMI receiver's card `rockchip,hdmiin`.
const HDMI_IN: &str = "hdmiin";

/// The cards `/proc/asound/cards` lists: (index, id, description), from
/// each card's first line (" 3 [rockchiphdmiin ]: rockchip_hdmiin - ...").
fn cards(text: &str) -> impl Iterator<Item = (&str, &str, &str)> {
    text.lines().filter_map(|l| {
        let (index, rest) = l.trim_start().split_once(' ')?;
        let (id, description) = rest.trim_start().strip_prefix('[')?.split_once(']')?;
        Some((index, id.trim(), description))
    })
}

/// The id (`hw:CARD=<id>`) of the first card whose description has `needle`.
pub fn find_card(text: &str, needle: &str) -> Option<String> {
    cards(text)
        .find(|(_, id, d)| !id.is_empty() && d.to_ascii_lowercase().contains(needle))
        .map(|(_, id, _)| id.to_string())
}

/// Is an ALSA device string's card among the cards? (`hw:CARD=x,DEV=0`,
/// `plughw:1`, `hw:x`; `default` and plugins are taken on trust.)
fn card_present(text: &str, device: &str) -> bool {
    let Some((_, rest)) = device.split_once(':') else {
        return true;
    };
    let card = rest.split(',').next().unwrap_or("");
    let card = card.strip_prefix("CARD=").unwrap_or(card);
    cards(text).any(|(index, id, _)| index == card || id == card)
}

/// `input_hz`: the source's audio rate where its receiver reports it (a
/// bridge wired over I2S); the device is then captured at that rate.
pub fn plan(p: &PathConfig, cards: &str, input_hz: u32) -> Plan {
    let device = match (&p.audio, p.source) {
        (Audio::Off, _) | (_, Source::Publisher) => return Plan::Silent,
        (Audio::Auto, Source::Test) => None,
        (Audio::Auto, Source::Hdmi) if p.subdev.is_none() => match find_card(cards, HDMI_IN) {
            Some(id) => Some(format!("hw:CARD={id}")),
            None => return Plan::Missing("no HDMI-in sound card".into()),
        },
        // A bridge's or a camera's sound is wired per board: named.
        (Audio::Auto, _) => return Plan::Silent,
        (Audio::Device(d), _) if !card_present(cards, d) => {
            return Plan::Missing(format!("ALSA device {d} not present"));
        }
        (Audio::Device(d), _) => Some(d.clone()),
    };
    let opus = format!(
        "queue max-size-buffers=0 max-size-bytes=0 max-size-time=200000000 leaky=downstream \
         ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 \
         ! opusenc bitrate={} frame-size=20 \
         ! appsink name=asink sync=false max-buffers=100 drop=true async=false",
        p.audio_bitrate
    );
    let (launch, from) = match device {
        // A quiet tone, and a click at every whole second of running
        // time (the video's clock too), to hear and to measure sync by.
        None => (
            format!(
                "audiomixer name=amix ! {opus} \
                 audiotestsrc is-live=true wave=sine freq=330 volume=0.1 ! amix. \
                 audiotestsrc is-live=true wave=ticks freq=1500 sine-periods-per-tick=15 \
                 volume=0.9 ! amix."
            ),
            "test tone".to_string(),
        ),
        // The card is not the pipeline's clock: video and audio share the
        // system clock, so their timestamps agree.
        Some(d) => {
            let (caps, from) = match input_hz {
                0 => (String::new(), d.clone()),
                hz => (
                    format!(" ! audio/x-raw,rate={hz}"),
                    format!("{d}, input {} kHz", hz as f64 / 1000.0),
                ),
            };
            (
                format!("alsasrc device={d} provide-clock=false do-timestamp=true{caps} ! {opus}"),
                from,
            )
        }
    };
    Plan::Sound(Branch {
        launch,
        label: format!("Opus 48 kHz stereo, {from}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the R58's BSP kernel lists (HDMI-in, the codec, the HDMI outs).
    const R58_CARDS: &str = " 0 [rockchipdp0    ]: rockchip-dp0 - rockchip,dp0
                      rockchip,dp0
 1 [rockchiphdmi0  ]: rockchip-hdmi0 - rockchip,hdmi0
                      rockchip,hdmi0
 2 [rockchipes8388 ]: rockchip-es8388 - rockchip,es8388
                      rockchip,es8388
 3 [rockchiphdmiin ]: rockchip_hdmiin - rockchip,hdmiin
                      rockchip,hdmiin
";

    fn path(source: Source, audio: Audio) -> PathConfig {
        PathConfig {
            source,
            audio,
            ..PathConfig::default()
        }
    }

    #[test]
    fn the_hdmi_receivers_card_is_found_by_name() {
        assert_eq!(
            find_card(R58_CARDS, HDMI_IN).as_deref(),
            Some("rockchiphdmiin")
        );
        let Plan::Sound(b) = plan(&path(Source::Hdmi, Audio::Auto), R58_CARDS, 0) else {
            panic!("no sound")
        };
        assert!(
            b.launch
                .starts_with("alsasrc device=hw:CARD=rockchiphdmiin "),
            "{}",
            b.launch
        );
        assert!(b.launch.contains("opusenc bitrate=96000") && b.launch.ends_with("async=false"));
        assert_eq!(b.label, "Opus 48 kHz stereo, hw:CARD=rockchiphdmiin");
    }

    #[test]
    fn missing_sound_is_named_and_other_sources_are_silent() {
        let no_hdmiin = R58_CARDS.lines().take(6).collect::<Vec<_>>().join("\n");
        assert_eq!(
            plan(&path(Source::Hdmi, Audio::Auto), &no_hdmiin, 0),
            Plan::Missing("no HDMI-in sound card".into())
        );
        assert_eq!(
            plan(
                &path(Source::Hdmi, Audio::Device("hw:CARD=usbaudio".into())),
                R58_CARDS,
                0
            ),
            Plan::Missing("ALSA device hw:CARD=usbaudio not present".into())
        );
        assert!(matches!(
            plan(
                &path(Source::V4l2, Audio::Device("plughw:2".into())),
                R58_CARDS,
                0
            ),
            Plan::Sound(_)
        ));
        assert_eq!(
            plan(&path(Source::V4l2, Audio::Auto), R58_CARDS, 0),
            Plan::Silent
        );
        assert_eq!(
            plan(&path(Source::Test, Audio::Off), R58_CARDS, 0),
            Plan::Silent
        );
        assert_eq!(
            plan(&path(Source::Publisher, Audio::Auto), "", 0),
            Plan::Silent
        );
    }

    #[test]
    fn the_test_source_has_a_tone_with_a_click_each_second() {
        let Plan::Sound(b) = plan(&path(Source::Test, Audio::Auto), "", 0) else {
            panic!("no tone")
        };
        assert!(b.launch.contains("wave=ticks") && b.launch.contains("wave=sine"));
        gstreamer::init().unwrap();
        // The branch builds as GStreamer sees it.
        gstreamer::parse::launch(&b.launch).expect("a valid branch");
    }

    /// A bridge wired over I2S names its device; the rate its driver
    /// reports is what the device is captured at.
    #[test]
    fn a_named_device_is_captured_at_the_rate_the_input_reports() {
        let mut p = path(Source::Hdmi, Audio::Device("hw:CARD=rockchipes8388".into()));
        p.subdev = Some("/dev/v4l-subdev2".into());
        let Plan::Sound(b) = plan(&p, R58_CARDS, 44_100) else {
            panic!("no sound")
        };
        assert!(
            b.launch.starts_with(
                "alsasrc device=hw:CARD=rockchipes8388 provide-clock=false do-timestamp=true \
                 ! audio/x-raw,rate=44100 ! queue"
            ),
            "{}",
            b.launch
        );
        assert_eq!(
            b.label,
            "Opus 48 kHz stereo, hw:CARD=rockchipes8388, input 44.1 kHz"
        );
        let Plan::Sound(b) = plan(&p, R58_CARDS, 0) else {
            panic!("no sound")
        };
        assert!(!b.launch.contains("rate=44100") && b.label.ends_with("rockchipes8388"));
    }
}
