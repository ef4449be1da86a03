//! `--read-from leader|any`: where the smart client sends a linearizable read.
//!
//! Owns the choice and the member it starts at; the request itself (retries, hints,
//! deadlines) stays in `client`. Either way the read is linearizable: a follower asks the
//! leader for its read index and answers once it has applied that far (the server's
//! `GetRequest.any_member`).

use rand::Rng as _;

/// Where linearizable reads go first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadFrom {
    /// The leader (found by hints, as writes are); a follower asked first redirects there.
    #[default]
    Leader,
    /// A random member, which answers itself: reads spread over the cluster.
    Any,
}

impl ReadFrom {
    /// The flag's word.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadFrom::Leader => "leader",
            ReadFrom::Any => "any",
        }
    }

    /// The member a read starts at: a random one of `peers` for `Any`, none (the leader
    /// hint, as for writes) for `Leader`.
    pub fn first_member(self, peers: &[String]) -> Option<String> {
        match self {
            ReadFrom::Leader => None,
            ReadFrom::Any if peers.is_empty() => None,
            ReadFrom::Any => Some(peers[rand::rng().random_range(0..peers.len())].clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReadFrom;

    #[test]
    fn any_starts_at_one_of_the_members() {
        let peers = vec!["a:1".to_string(), "b:2".to_string()];
        assert_eq!(ReadFrom::Leader.first_member(&peers), None);
        for _ in 0..20 {
            let first = ReadFrom::Any.first_member(&peers).expect("a member");
            assert!(peers.contains(&first));
        }
        assert_eq!(ReadFrom::Any.first_member(&[]), None);
    }
}
