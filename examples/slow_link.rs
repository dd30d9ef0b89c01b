//! The slow link of `tests/support/slow_link.rs` as a program, for `make bench`:
//! `slow_link LISTEN UPSTREAM RTT_MS MBIT` relays LISTEN to UPSTREAM with RTT_MS added to every
//! round trip and MBIT Mbit/s shared by all connections each way, until killed.

#[path = "../tests/support/slow_link.rs"]
#[allow(dead_code)]
mod slow_link;

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream, rtt, mbit] = args.as_slice() else {
        eprintln!("usage: slow_link LISTEN UPSTREAM RTT_MS MBIT");
        std::process::exit(2);
    };
    let (Ok(rtt), Ok(mbit)) = (rtt.parse::<u64>(), mbit.parse::<u64>()) else {
        eprintln!("error: RTT_MS and MBIT are whole numbers");
        std::process::exit(2);
    };
    let link = slow_link::SlowLink::start(
        listen,
        upstream,
        Duration::from_millis(rtt),
        mbit * 1_000_000,
    );
    println!("{}", link.host());
    loop {
        std::thread::park();
    }
}
