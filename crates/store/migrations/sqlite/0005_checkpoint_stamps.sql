-- RFC 3161 time stamps on signed log checkpoints (by the node's own time-stamp authority):
-- the token covers the root of a batch, the proof leads from the checkpoint to that root.
-- Added once to a checkpoint that has none; the checkpoint itself never changes.
ALTER TABLE log_checkpoints ADD COLUMN tst BLOB;
ALTER TABLE log_checkpoints ADD COLUMN tst_proof TEXT;
