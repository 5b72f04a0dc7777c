//! Moving slots between primaries: the classic `SETSLOT` / `MIGRATE` resharding
//! (`legacy`), and Valkey 9's atomic slot migration, `CLUSTER MIGRATESLOTS`
//! (`atomic`).

use std::io;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use valkey_client::Cmd;

use super::Cluster;
use super::poll::{Conns, check_slots, pause, timed_out};

mod atomic;
mod legacy;

impl Cluster {
    /// Checks the arguments of a migration.
    fn check_migration(
        &self,
        slots: &RangeInclusive<u16>,
        from: usize,
        to: usize,
    ) -> io::Result<()> {
        check_slots(slots)?;
        self.checked_node(from)?;
        self.checked_node(to)?;
        if from == to {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot migrate slots from node {from} to itself"),
            ));
        }
        Ok(())
    }

    /// `CLUSTER MYID` of node `i`, which must be running and not frozen.
    async fn live_id(&self, conns: &mut Conns, i: usize, deadline: Instant) -> io::Result<String> {
        let node = self.live_node(i)?;
        let reply = conns
            .call(i, node, &Cmd::new("CLUSTER").arg("MYID"), deadline)
            .await?;
        reply
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| io::Error::other(format!("CLUSTER MYID: unexpected reply {reply:?}")))
    }

    /// Waits until every running, non-frozen node gives `slots` to node `to`.
    async fn wait_owned(
        &self,
        conns: &mut Conns,
        slots: &RangeInclusive<u16>,
        to: usize,
        deadline: Instant,
        timeout: Duration,
    ) -> io::Result<()> {
        let port = self.checked_node(to)?.port();
        loop {
            let last = match self.owners_agree(conns, slots, port, deadline).await {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(timed_out(
                    format_args!("agreement that node {to} owns slots {slots:?}"),
                    timeout,
                    last,
                ));
            }
            pause(deadline).await;
        }
    }
}
