//! Grouping rules, and real sends over loopback sockets.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::*;

fn peer(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn sizes(list: &[(u16, usize)]) -> Vec<(SocketAddr, Vec<u8>)> {
    list.iter()
        .enumerate()
        .map(|(i, &(p, n))| (peer(p), vec![i as u8; n]))
        .collect()
}

#[test]
fn equal_packets_to_one_peer_share_a_message() {
    let q = sizes(&[
        (1, 1200),
        (1, 1200),
        (1, 700),
        (1, 1200),
        (2, 1200),
        (2, 90),
    ]);
    let g = group(&q, true);
    let spans: Vec<(usize, usize, Option<u16>)> =
        g.iter().map(|g| (g.start, g.end, g.segment)).collect();
    // A shorter packet ends a run; another peer starts a new one.
    assert_eq!(
        spans,
        vec![(0, 3, Some(1200)), (3, 4, None), (4, 6, Some(1200))]
    );
    // Without GSO every packet is its own message.
    assert_eq!(group(&q, false).len(), 6);
}

#[test]
fn a_run_stops_at_the_segment_limit() {
    let q = sizes(&vec![(1, 1000); MAX_SEGMENTS + 3]);
    let g = group(&q, true);
    // 64 segments of 1,000 bytes fit under 65,000 bytes, a 65th does not.
    assert_eq!(g[0].end - g[0].start, MAX_SEGMENTS);
    let q = sizes(&vec![(1, 1200); 70]);
    let g = group(&q, true);
    assert_eq!(g[0].end - g[0].start, 54, "65,000 / 1,200 bytes");
}

/// Send a batch for two peers over loopback; both must receive every
/// packet, in order, intact.
fn round_trip(gso: bool) -> SendStats {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    }
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut batch = UdpBatch {
        gso,
        ..UdpBatch::default()
    };
    let mut want_a = vec![];
    for i in 0..10u8 {
        let p = vec![i; if i == 9 { 300 } else { 1200 }];
        want_a.push(p.clone());
        batch.push(a.local_addr().unwrap(), p);
    }
    let want_b: Vec<Vec<u8>> = (0..3u8).map(|i| vec![100 + i; 800]).collect();
    for p in &want_b {
        batch.push(b.local_addr().unwrap(), p.clone());
    }
    batch.flush(tx.as_raw_fd());
    let mut buf = [0u8; 2048];
    for (sock, want) in [(&a, want_a), (&b, want_b)] {
        for w in want {
            let n = sock.recv(&mut buf).expect("every packet arrives");
            assert_eq!(&buf[..n], &w[..], "in order and intact");
        }
    }
    assert!(batch.queue.is_empty());
    batch.stats
}

#[test]
fn a_batch_arrives_whole_with_gso() {
    let stats = round_trip(true);
    assert_eq!(stats.packets, 13);
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.syscalls, 1, "two GSO messages in one sendmmsg");
}

#[test]
fn a_batch_arrives_whole_without_gso() {
    let stats = round_trip(false);
    assert_eq!(stats.packets, 13);
    assert_eq!(stats.syscalls, 1, "thirteen messages in one sendmmsg");
}
