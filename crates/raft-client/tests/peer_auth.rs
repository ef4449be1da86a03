//! The peer port refuses Raft traffic from another cluster or from a node not in `--peers`,
//! and the node keeps working afterwards.

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
    let peer_addr = format!("http://127.0.0.1:{}", cluster.base + 1);
    block_on(async {
        let client = RaftTransportClient::connect(peer_addr)
            .await
            .expect("connect");
        let refused = |cluster_id: u64, from: u64, to: u64| {
            let mut client = client.clone();
            let batch = RaftBatch {
                cluster_id,
                from,
                to,
                messages: vec![],
            };
            async move {
                let err = client
                    .stream(tokio_stream::iter(vec![batch]))
                    .await
                    .expect_err("the batch should be refused");
                assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
                err.message().to_string()
            }
        };
        let msg = refused(cluster_id ^ 1, 2, 1).await;
        assert!(msg.contains("cluster"), "another cluster: {msg}");
        let msg = refused(cluster_id, 9, 1).await;
        assert!(msg.contains("not a member"), "non-member: {msg}");
        let msg = refused(cluster_id, 2, 3).await;
        assert!(msg.contains("reached node 1"), "misaddressed: {msg}");

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
    // 1: the cluster's initial snapshot, 2: the leader's empty entry, 3: "still": the forged
    // proposal never entered the log.
    assert!(last <= 3, "log grew to {last}: {statuses:?}");
}
