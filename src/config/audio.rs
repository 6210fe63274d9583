//! A path's `audio`: `"auto"` (the HDMI receiver's own sound card, a tone
//! with a click every second for the test source, nothing for the
//! others), `"off"`, or an ALSA device (`"hw:CARD=es8388"`, e.g. an
//! LT6911 bridge's I2S audio). Sent to viewers as Opus.

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Default, PartialEq)]
pub enum Audio {
    #[default]
    Auto,
    Off,
    Device(String),
}

impl<'de> Deserialize<'de> for Audio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Audio, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "auto" => Audio::Auto,
            "off" => Audio::Off,
            _ => Audio::Device(s),
        })
    }
}

/// Opus at 96 kbit/s: transparent for speech and fine for music.
pub const DEFAULT_BITRATE: u32 = 96_000;

/// (key, message) for a bad `audio` or `audio_bitrate`.
pub fn check(name: &str, p: &super::PathConfig) -> Result<(), (&'static str, String)> {
    if !(16_000..=256_000).contains(&p.audio_bitrate) {
        return Err((
            "audio_bitrate",
            format!(
                "path '{name}': audio_bitrate {} out of range (16000-256000 bit/s; Opus)",
                p.audio_bitrate
            ),
        ));
    }
    match &p.audio {
        Audio::Device(d) if d.is_empty() || d.contains(['!', ' ', '"']) => Err((
            "audio",
            format!(
                "path '{name}': audio = \"{d}\": expected \"auto\", \"off\" or an ALSA device such as \"hw:CARD=rockchiphdmiin\""
            ),
        )),
        Audio::Device(_) if p.source == super::Source::Publisher => Err((
            "audio",
            format!(
                "path '{name}': a publisher path carries its publisher's audio; leave audio out"
            ),
        )),
        _ => Ok(()),
    }
}
