//! H.264 facts the daemon needs: splitting Annex-B access units into NAL
//! units, reading the profile from an SPS, and RTP packetization
//! (RFC 6184 packetization-mode 1: single NAL, STAP-A, FU-A).
//!
//! Packetizing happens once per path; every viewer shares the payloads.

use std::sync::Arc;

/// RTP payload budget: 1200 bytes keeps SRTP + headers + TURN/TCP framing
/// under a 1280-byte IPv6 minimum MTU path.
pub const MAX_PAYLOAD: usize = 1200;

const NAL_SPS: u8 = 7;
const NAL_AUD: u8 = 9;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// NAL units (without start codes) of an Annex-B byte stream.
pub fn nal_units(annexb: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i + 3 <= annexb.len() {
        if annexb[i] == 0 && annexb[i + 1] == 0 && annexb[i + 2] == 1 {
            if let Some(s) = start {
                // A 4-byte start code leaves one trailing zero on the previous NAL.
                let mut end = i;
                while end > s && annexb[end - 1] == 0 {
                    end -= 1;
                }
                out.push(&annexb[s..end]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start
        && s < annexb.len()
    {
        out.push(&annexb[s..]);
    }
    out.retain(|n| !n.is_empty());
    out
}

pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map(|b| b & 0x1f).unwrap_or(0)
}

/// `profile-level-id` (profile_idc, constraint flags, level_idc) from the
/// first SPS in an access unit, e.g. 0x42e01f for constrained baseline 3.1.
pub fn profile_level_id(annexb: &[u8]) -> Option<u32> {
    let sps = nal_units(annexb)
        .into_iter()
        .find(|n| nal_type(n) == NAL_SPS)?;
    (sps.len() >= 4).then(|| u32::from_be_bytes([0, sps[1], sps[2], sps[3]]))
}

/// RTP payloads for one access unit, in send order. The marker bit belongs
/// on the last one.
pub fn packetize(annexb: &[u8], max: usize) -> Vec<Arc<[u8]>> {
    let nals: Vec<&[u8]> = nal_units(annexb)
        .into_iter()
        .filter(|n| nal_type(n) != NAL_AUD)
        .collect();
    let mut out: Vec<Arc<[u8]>> = Vec::new();
    let mut i = 0;
    while i < nals.len() {
        // Aggregate a run of small NALs (SPS, PPS, SEI) into one STAP-A.
        let mut j = i;
        let mut size = 1;
        while j < nals.len() && size + 2 + nals[j].len() <= max {
            size += 2 + nals[j].len();
            j += 1;
        }
        if j - i >= 2 {
            let mut p = Vec::with_capacity(size);
            let nri = nals[i..j].iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
            p.push(nri | STAP_A);
            for n in &nals[i..j] {
                p.extend_from_slice(&(n.len() as u16).to_be_bytes());
                p.extend_from_slice(n);
            }
            out.push(p.into());
            i = j;
            continue;
        }
        let nal = nals[i];
        if nal.len() <= max {
            out.push(nal.into());
        } else {
            let (hdr, body) = (nal[0], &nal[1..]);
            let chunks: Vec<&[u8]> = body.chunks(max - 2).collect();
            for (k, c) in chunks.iter().enumerate() {
                let mut p = Vec::with_capacity(c.len() + 2);
                p.push((hdr & 0xe0) | FU_A);
                let start = if k == 0 { 0x80 } else { 0 };
                let end = if k + 1 == chunks.len() { 0x40 } else { 0 };
                p.push(start | end | (hdr & 0x1f));
                p.extend_from_slice(c);
                out.push(p.into());
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au() -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1, 0x09, 0xf0]; // AUD
        v.extend([0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0xaa]); // SPS
        v.extend([0, 0, 1, 0x68, 0xce, 0x3c, 0x80]); // PPS, 3-byte start code
        v.extend([0, 0, 0, 1, 0x65]); // IDR slice
        v.extend((0..3000u32).map(|i| (i % 251) as u8 + 1));
        v
    }

    #[test]
    fn splits_annexb_with_both_start_code_lengths() {
        let a = au();
        let n = nal_units(&a);
        assert_eq!(
            n.iter().map(|n| nal_type(n)).collect::<Vec<_>>(),
            [9, 7, 8, 5]
        );
        assert_eq!(n[1], &[0x67, 0x42, 0xe0, 0x1f, 0xaa]);
        assert_eq!(n[3].len(), 3001);
    }

    #[test]
    fn reads_profile_level_id_from_sps() {
        assert_eq!(profile_level_id(&au()), Some(0x42e01f));
        assert_eq!(profile_level_id(&[0, 0, 0, 1, 0x41, 1, 2]), None);
    }

    #[test]
    fn stap_a_then_fu_a_and_reassembles() {
        let a = au();
        let pk = packetize(&a, MAX_PAYLOAD);
        assert!(pk.iter().all(|p| p.len() <= MAX_PAYLOAD));
        assert_eq!(pk[0][0] & 0x1f, STAP_A, "SPS+PPS aggregated");
        assert_eq!(&pk[0][1..3], &[0, 5]);
        // Reassemble the FU-A fragments into the IDR slice.
        let mut idr = vec![(pk[1][0] & 0xe0) | (pk[1][1] & 0x1f)];
        assert_eq!(pk[1][1] & 0x80, 0x80, "first fragment has S bit");
        assert_eq!(
            pk.last().unwrap()[1] & 0x40,
            0x40,
            "last fragment has E bit"
        );
        for p in &pk[1..] {
            assert_eq!(p[0] & 0x1f, FU_A);
            idr.extend_from_slice(&p[2..]);
        }
        assert_eq!(idr, nal_units(&a)[3]);
    }

    #[test]
    fn small_nal_goes_alone() {
        let pk = packetize(&[0, 0, 0, 1, 0x41, 9, 9, 9], MAX_PAYLOAD);
        assert_eq!(pk.len(), 1);
        assert_eq!(&pk[0][..], &[0x41, 9, 9, 9]);
    }
}
