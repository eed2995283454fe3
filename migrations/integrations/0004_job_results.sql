-- What a sync or import did with every record Vessey returned (created, updated, unchanged,
-- rejected and the first rejections' reasons), written as the job goes.
ALTER TABLE jobs ADD COLUMN result jsonb;
