-- Envelopes: a Kafka message on engagement.events carries one or more events as JSON Lines,
-- so an event's position in the log is (kafka_partition, kafka_offset, kafka_line).
-- Rows written before this migration read kafka_line = 0: they were one-event messages.
ALTER TABLE engagement.events ADD COLUMN IF NOT EXISTS kafka_line UInt32 DEFAULT 0 COMMENT 'the event''s line inside its Kafka message (an envelope of JSON Lines); 0 for one-event messages' AFTER kafka_offset;
