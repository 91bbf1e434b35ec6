/** The ledger's folder under DATA_OUTPUT_DIR; its segment names never end in `.jsonl`. */
export const LEDGER_FOLDER = '.ledger';

/** A writer starts a new segment once its current one is this old, holds this many records or ids. */
export const SEGMENT_MAX_AGE_MS = 30_000;
export const SEGMENT_MAX_RECORDS = 5_000;
export const SEGMENT_MAX_IDS = 20_000;

/**
 * A record whose file is missing, of a live writer and younger than this, is a rename under way:
 * a lookup waits (at most this long after the record was made) for its file or its abort.
 */
export const PENDING_RECORD_WAIT_MS = 2_000;
/** How often a waiting lookup looks again. */
export const PENDING_POLL_MS = 50;

/**
 * A delivery whose entries were written but which was never acknowledged (its channel closed) comes
 * back later, to any consumer: the records of its entries stay at least this long. Segments of
 * writers that are gone stay this long after their last write for the same reason.
 */
export const UNSETTLED_KEEP_MS = 24 * 60 * 60 * 1000;

/** How often a consumer looks for segments it may delete (its own, and those of writers that are gone). */
export const SWEEP_EVERY_MS = 60 * 60 * 1000;
/** How often a writer closes an idle current segment, so that it can be deleted. */
export const ROTATE_CHECK_EVERY_MS = SEGMENT_MAX_AGE_MS;
