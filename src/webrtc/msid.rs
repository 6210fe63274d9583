//! One media stream per answer. str0m, answering, gives each m-line it
//! sends on its own random `msid` stream id; browsers only lip-sync audio
//! and video tracks of the same stream (libwebrtc's sync group), so r58's
//! sound would play unsynchronised with its picture. This puts every
//! `msid` of an answer under the first one's stream id.

/// The answer with every msid stream id replaced by the first one seen.
pub fn one_stream(sdp: &str) -> String {
    let first = sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=msid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .filter(|s| *s != "-");
    let Some(stream) = first else {
        return sdp.to_string();
    };
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let end = &line[body.len()..];
        let fixed = if let Some(rest) = body.strip_prefix("a=msid:") {
            format!("a=msid:{stream}{}", after_first_word(rest))
        } else if body.starts_with("a=msid-semantic:") {
            format!("a=msid-semantic: WMS {stream}")
        } else if let Some((ssrc, rest)) = body
            .strip_prefix("a=ssrc:")
            .and_then(|r| r.split_once(" msid:"))
        {
            format!("a=ssrc:{ssrc} msid:{stream}{}", after_first_word(rest))
        } else {
            body.to_string()
        };
        out.push_str(&fixed);
        out.push_str(end);
    }
    out
}

/// " <track id>" of "<stream id> <track id>".
fn after_first_word(s: &str) -> &str {
    s.find(' ').map_or("", |i| &s[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_joins_the_videos_stream() {
        let answer = "v=0\r\na=msid-semantic: WMS Vs As\r\nm=video 9 x 108\r\na=mid:0\r\n\
            a=msid:Vs Vt\r\na=ssrc:1 cname:c\r\na=ssrc:1 msid:Vs Vt\r\nm=audio 9 x 111\r\n\
            a=mid:1\r\na=msid:As At\r\na=ssrc:2 msid:As At\r\n";
        let one = one_stream(answer);
        assert_eq!(
            one,
            "v=0\r\na=msid-semantic: WMS Vs\r\nm=video 9 x 108\r\na=mid:0\r\n\
            a=msid:Vs Vt\r\na=ssrc:1 cname:c\r\na=ssrc:1 msid:Vs Vt\r\nm=audio 9 x 111\r\n\
            a=mid:1\r\na=msid:Vs At\r\na=ssrc:2 msid:Vs At\r\n"
        );
        // Track ids stay apart; an answer without msid is left alone.
        assert!(one.contains("Vs At") && one.contains("Vs Vt"));
        assert_eq!(
            one_stream("v=0\r\nm=video 9 x 1\r\n"),
            "v=0\r\nm=video 9 x 1\r\n"
        );
    }
}
