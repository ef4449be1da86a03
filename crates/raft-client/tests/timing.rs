//! `put --timing` on a real cluster: the write's journey, a stamp per step, from the
//! leader and from the followers themselves, in an order that follows the path; and a
//! write that did not ask for it leaves no stamp anywhere.

mod common;

use common::*;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The stamps node `id` kept for the timed write at `index`.
fn stamps_at(c: &Cluster, id: u64, index: u64) -> Vec<String> {
    use kv_proto::admin::admin_client::AdminClient;
    block_on(async {
        let mut admin = AdminClient::connect(format!("http://{}", c.api_addr(id)))
            .await
            .expect("connect");
        admin
            .stamps(kv_proto::admin::StampsRequest { index })
            .await
            .expect("stamps")
            .into_inner()
            .stamps
            .into_iter()
            .map(|s| s.step)
            .collect()
    })
}

#[test]
fn a_timed_write_shows_every_step_of_its_journey_in_path_order() {
    let c = Cluster::start_with(3, &[]);
    let leader = c.wait_leader();
    c.put("warm", "up");
    let out = c.client(&["put", "--timing", "k", "v"]);
    assert_ok(&out, "put --timing");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = said.lines();
    assert!(
        lines.next().is_some_and(|l| l.starts_with("OK (index")),
        "{said}"
    );
    // `+<µs> node <id> <step>`, offsets never going back.
    let steps: Vec<(i64, u64, String)> = lines
        .map(|l| {
            let (us, rest) = l
                .split_once(" node ")
                .unwrap_or_else(|| panic!("{l:?}: {said}"));
            let (node, step) = rest.split_once(' ').unwrap_or_else(|| panic!("{l:?}"));
            let us: i64 = us
                .trim_start_matches('+')
                .parse()
                .unwrap_or_else(|_| panic!("{l:?}"));
            (
                us,
                node.parse().unwrap_or_else(|_| panic!("{l:?}")),
                step.to_string(),
            )
        })
        .collect();
    assert!(steps.windows(2).all(|w| w[0].0 <= w[1].0), "{said}");
    assert!(steps.iter().all(|s| s.0 > 0), "{said}");
    let at = |node: u64, step: &str| {
        steps
            .iter()
            .position(|s| s.1 == node && s.2 == step)
            .unwrap_or_else(|| panic!("no {step:?} from node {node}:\n{said}"))
    };
    let leader_path = [
        "received the request",
        "proposed",
        "appended and fsynced",
        "committed",
        "applied",
        "answered",
    ];
    let mut last = 0;
    for step in leader_path {
        let i = at(leader, step);
        assert!(i >= last, "{step:?} out of order:\n{said}");
        last = i;
    }
    // Each follower's own stamps (a majority needs one of them; both are asked).
    let followers: Vec<u64> = (1..=3).filter(|i| *i != leader).collect();
    let mut acknowledged = 0;
    for f in &followers {
        let sent = at(leader, &format!("sent to node {f}"));
        if !steps.iter().any(|s| s.1 == *f) {
            continue;
        }
        let got = at(*f, &format!("received the append from node {leader}"));
        let stored = at(*f, "stored and fsynced");
        let acked = at(*f, &format!("acknowledged to node {leader}"));
        assert!(sent <= got && got <= stored && stored <= acked, "{said}");
        if let Some(heard) = steps
            .iter()
            .position(|s| s.1 == leader && s.2 == format!("acknowledgement from node {f} received"))
        {
            assert!(acked <= heard, "{said}");
            acknowledged += 1;
        }
    }
    assert!(
        acknowledged >= 1,
        "the commit needs a follower's ack:\n{said}"
    );
    assert!(at(leader, "proposed") < at(leader, "committed"));

    let json = c.client(&["put", "--timing", "--json", "k", "w"]);
    assert_ok(&json, "put --timing --json");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let timing = v["timing"].as_array().expect("timing");
    assert!(
        timing.iter().any(|s| s["step"] == "appended and fsynced"
            && s["node"] == leader
            && s["us"].as_i64() > Some(0)),
        "{v}"
    );
}

#[test]
fn a_write_that_did_not_ask_leaves_no_stamp() {
    let c = Cluster::start_with(3, &[]);
    c.wait_leader();
    let out = c.client(&["put", "--json", "plain", "v"]);
    assert_ok(&out, "put");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v.get("timing").is_none(), "{v}");
    let index = v["index"].as_u64().expect("index");
    for id in 1..=3 {
        assert!(
            stamps_at(&c, id, index).is_empty(),
            "node {id}: {}",
            text(&out)
        );
    }
}

/// No stamp travels unless asked: a put without timing encodes exactly as before the field
/// existed (proto3 leaves a false bool out).
#[test]
fn an_untimed_request_carries_no_timing_field() {
    use prost::Message as _;
    let plain = kv_proto::kv::PutRequest {
        key: "k".into(),
        value: b"v".to_vec(),
        id: Some(kv_proto::kv::RequestId {
            client_id: 1,
            seq: 1,
        }),
        timing: false,
    };
    let timed = kv_proto::kv::PutRequest {
        timing: true,
        ..plain.clone()
    };
    assert_eq!(plain.encode_to_vec().len() + 2, timed.encode_to_vec().len());
    let response = kv_proto::kv::WriteResponse::default();
    assert!(response.encode_to_vec().is_empty());
}
