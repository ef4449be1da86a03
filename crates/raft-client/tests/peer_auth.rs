//! The peer port refuses Raft traffic from another cluster, misaddressed batches and a
//! member whose data dir is not the one the log knows; it hears senders it does not know
//! (a member added while it was cut off may be one), and keeps working afterwards.

mod common;

use common::{Cluster, block_on};
use kv_proto::peer::RaftBatch;
use kv_proto::peer::raft_transport_client::RaftTransportClient;
use protobuf::Message as _;
use raft_proto::eraftpb::{Entry, Message, MessageType};

#[test]
fn batches_from_strangers_are_refused() {
    let cluster = Cluster::start(3);
    let marker = std::fs::read_to_string(cluster.data_dir(1).join("raft-playground.id"))
        .expect("marker file");
    let cluster_id: u64 = marker
        .lines()
        .find_map(|l| l.strip_prefix("cluster_id="))
        .and_then(|v| v.parse().ok())
        .expect("cluster_id in marker");
    let marker_2 = std::fs::read_to_string(cluster.data_dir(2).join("raft-playground.id"))
        .expect("marker file of node 2");
    let incarnation_2 = marker_2
        .lines()
        .find_map(|l| l.strip_prefix("incarnation="))
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .expect("incarnation in marker");
    let peer_addr = format!("http://127.0.0.1:{}", cluster.base + 1);
    block_on(async {
        let client = RaftTransportClient::connect(peer_addr)
            .await
            .expect("connect");
        let send = |cluster_id: u64, from: u64, to: u64, incarnation: u64| {
            let mut client = client.clone();
            let batch = RaftBatch {
                cluster_id,
                from,
                to,
                messages: vec![],
                incarnation,
                from_addr: String::new(),
                msg_ids: Vec::new(),
            };
            async move { client.stream(tokio_stream::iter(vec![batch])).await }
        };
        let refused = |cluster_id: u64, from: u64, to: u64, incarnation: u64| async move {
            let err = send(cluster_id, from, to, incarnation)
                .await
                .expect_err("the batch should be refused");
            assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
            err.message().to_string()
        };
        let msg = refused(cluster_id ^ 1, 2, 1, incarnation_2).await;
        assert!(msg.contains("cluster"), "another cluster: {msg}");
        let msg = refused(cluster_id, 2, 3, incarnation_2).await;
        assert!(msg.contains("reached node 1"), "misaddressed: {msg}");
        // A sender node 1 does not know is heard.
        send(cluster_id, 9, 1, 0x99)
            .await
            .expect("a batch from an unknown sender is accepted");
        // Node 2 with another data dir than the log knows is refused, once the leader has
        // recorded the initial members' incarnations (soon after the election; asked
        // before that, a second data dir for node 2 would only make it ambiguous).
        common::wait_for("node 1 to know the members' data dirs", || {
            let log = cluster.log(1);
            if log.contains("recorded data dir incarnations") {
                Ok(())
            } else {
                Err("not yet".into())
            }
        });
        let msg = send(cluster_id, 2, 1, incarnation_2 ^ 1)
            .await
            .expect_err("a batch from node 2 with a wrong incarnation is refused")
            .message()
            .to_string();
        assert!(msg.contains("data dir replaced"), "replaced: {msg}");
        assert!(msg.contains("member remove 2"), "says what to type: {msg}");

        // A well-addressed proposal from a member is still dropped: nodes never forward
        // proposals, so one on the wire is forged (it could carry a conf change).
        let entry = Entry {
            data: b"forged".to_vec().into(),
            ..Entry::default()
        };
        let mut propose = Message::default();
        propose.set_msg_type(MessageType::MsgPropose);
        propose.from = 2;
        propose.to = 1;
        propose.set_entries(vec![entry].into());
        let batch = RaftBatch {
            cluster_id,
            from: 2,
            to: 1,
            messages: vec![propose.write_to_bytes().expect("encode")],
            incarnation: incarnation_2,
            from_addr: String::new(),
            msg_ids: Vec::new(),
        };
        let mut client = client.clone();
        client
            .stream(tokio_stream::iter(vec![batch]))
            .await
            .expect("the stream itself is accepted");
    });
    cluster.put("still", "fine");
    let statuses = cluster.status();
    let last = statuses[0]["last_index"].as_u64().expect("last index");
    // 1: the cluster's initial snapshot, 2: the leader's empty entry, 3: the entry that
    // records the members' incarnations, 4: "still": the forged proposal never entered the
    // log.
    assert!(last <= 4, "log grew to {last}: {statuses:?}");
}
