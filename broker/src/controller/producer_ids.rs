//! InitProducerId on the controller: ids come from blocks reserved with a
//! `ProducerIdsRecord` in the metadata log, so no id is handed out twice, even across
//! restarts. Epoch bumps follow KIP-360.

use weir_protocol::ErrorCode;

use super::{AdminError, Controller, State};
use crate::metadata::{MetadataRecord, ProducerIdsRecord, Record};

/// Producer ids are reserved in blocks of this many, one metadata record per block.
const PRODUCER_ID_BLOCK: i64 = 1000;

impl Controller {
    /// Hands out a producer id and epoch: a fresh id, or the next epoch of `existing`
    /// (KIP-360), or for a transactional id the next epoch of the id it already holds.
    pub async fn init_producer_id(
        &self,
        transactional_id: Option<String>,
        existing: Option<(i64, i16)>,
    ) -> Result<(i64, i16), AdminError> {
        let mut state = self.lock_fresh().await?;
        if let Some(tid) = &transactional_id {
            if tid.is_empty() {
                return Err(AdminError::new(
                    ErrorCode::InvalidRequest,
                    "empty transactional id",
                ));
            }
            if let Some(&(pid, epoch)) = state.transactional.get(tid) {
                if let Some((given_pid, given_epoch)) = existing {
                    if given_pid != pid || given_epoch != epoch {
                        return Err(AdminError::new(
                            ErrorCode::ProducerFenced,
                            "producer id/epoch do not match the transactional id's",
                        ));
                    }
                }
                let next = self.bump(&mut state, pid, epoch).await?;
                state.transactional.insert(tid.clone(), next);
                return Ok(next);
            }
        } else if let Some((pid, epoch)) = existing {
            if pid < 0 || pid >= state.next_producer_id || epoch < 0 {
                return Err(AdminError::new(
                    ErrorCode::InvalidProducerIdMapping,
                    format!("producer id {pid} epoch {epoch} was not issued by this broker"),
                ));
            }
            return self.bump(&mut state, pid, epoch).await;
        }
        let pid = self.allocate(&mut state).await?;
        if let Some(tid) = transactional_id {
            state.transactional.insert(tid, (pid, 0));
        }
        Ok((pid, 0))
    }

    async fn bump(
        &self,
        state: &mut State,
        pid: i64,
        epoch: i16,
    ) -> Result<(i64, i16), AdminError> {
        if epoch < i16::MAX - 1 {
            Ok((pid, epoch + 1))
        } else {
            // Epoch exhausted: a new id starts again at epoch 0.
            Ok((self.allocate(state).await?, 0))
        }
    }

    async fn allocate(&self, state: &mut State) -> Result<i64, AdminError> {
        if state.next_producer_id >= state.producer_block_end {
            let end = state.next_producer_id + PRODUCER_ID_BLOCK;
            let record = MetadataRecord {
                record: Some(Record::ProducerIds(ProducerIdsRecord {
                    broker_id: self.node_id,
                    next_producer_id: end,
                })),
            };
            Self::append(state, vec![record]).await?;
            state.producer_block_end = end;
        }
        let pid = state.next_producer_id;
        state.next_producer_id += 1;
        Ok(pid)
    }
}
