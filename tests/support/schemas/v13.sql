-- nvr database schema, version 13. This file is authoritative (docs/design.md,
-- "Schema and upgrades").
--
-- Units: every *_90k column is in 90 kHz units; times ("*_time_90k") count from
-- 1970-01-01 00:00:00 UTC; "*_sec" columns are whole seconds since the epoch.
-- UUIDs are 16-byte blobs. JSON columns hold a JSON object (never NULL).
-- Once version 1 has shipped this file changes only together with a numbered
-- upgrade step in nvr/db/upgrade/. Version 2 added the index summary columns of
-- `recording` (v1_to_v2.py); version 3 the signal tables (signal_type to signal_change,
-- v2_to_v3.py); version 4 the per-recording motion summaries (recording_motion,
-- v3_to_v4.py); version 5 the protected ranges and per-camera rights (protected_range,
-- v4_to_v5.py); version 6 the archive tables (archive to archived_recording, v5_to_v6.py);
-- version 7 the redaction tombstones (redaction, v6_to_v7.py); version 8 the archive-only
-- recordings (archive_only_recording, v7_to_v8.py); version 9 the per-day totals of
-- recordings (recording_day, recording_day_zone, v8_to_v9.py); version 10 the motion union
-- as integers (recording_motion.cells_0..3, v9_to_v10.py); version 11 the per-hour motion
-- and per-day signal totals (motion_hour, signal_day, event_total_zone, v10_to_v11.py);
-- version 12 what archive retention deleted per archive and stream
-- (archive_stream_retention, v11_to_v12.py); version 13 the per-day totals of
-- archive-only recordings (archive_only_day, v12_to_v13.py).

-- The database's identity: exactly one row. Sample-file directories record this uuid
-- in their meta file so a directory is never used with another database.
create table meta (
  uuid blob not null check (length(uuid) = 16)
);

-- One row per schema version this database has been at (created or upgraded to).
-- The current version is max(id).
create table version (
  id integer primary key,
  unix_time integer not null,  -- seconds since the epoch when this version was reached
  notes text                   -- e.g. "created", "upgraded from 1"
);

-- One row per read-write open of the database (each `nvr run`, `nvr config` change...).
-- Recordings point at the open that wrote them: ids of a growing recording are only
-- unique together with the open id.
create table open (
  id integer primary key,
  uuid blob unique not null check (length(uuid) = 16),
  start_time_90k integer not null,  -- wall time when the open began
  end_time_90k integer,             -- wall time of the last flush of this open (NULL: none yet)
  duration_90k integer,             -- monotonic time from the open to its last flush
  boot_uuid blob check (boot_uuid is null or length(boot_uuid) = 16)  -- the kernel's boot id
);

-- A directory holding sample files (one file per recording: docs/design.md,
-- "On-disk formats").
create table sample_file_dir (
  id integer primary key,
  path text unique not null,  -- absolute path
  uuid blob unique not null check (length(uuid) = 16),  -- also in the directory's meta file
  -- The last open that completed the directory's open interlock; the meta file names the
  -- same open. A mismatch means the database or the directory was swapped or restored.
  last_complete_open_id integer references open (id)
);

create table camera (
  id integer primary key,
  uuid blob unique not null check (length(uuid) = 16),  -- the id the HTTP API uses
  short_name text unique not null check (length(short_name) between 1 and 64),
  description text not null default '',
  -- JSON: {"username": str?, "password": str?, "onvif_url": str?}
  config text not null default '{}' check (json_valid(config))
);

create table stream (
  -- never reused (autoincrement): composite ids of a deleted stream's recordings may
  -- still name files listed in garbage, and must not collide with a new stream's
  id integer primary key autoincrement,
  camera_id integer not null references camera (id),
  sample_file_dir_id integer references sample_file_dir (id),  -- NULL: not recorded
  type text not null check (type in ('main', 'sub', 'ext')),
  -- JSON: {"url": str, "mode": "record"|"off"|"live", "retain_bytes": int,
  --        "retain_days": int?, "flush_if_sec": int, "rtsp_transport": "tcp"|"udp"}
  config text not null default '{}' check (json_valid(config)),
  -- Number of recordings ever committed for this stream; the next recording id.
  -- Sample files with an id >= this were never committed and are deleted at startup.
  cum_recordings integer not null default 0 check (cum_recordings >= 0),
  -- Sum of media durations of all recordings ever committed (90k).
  cum_media_duration_90k integer not null default 0 check (cum_media_duration_90k >= 0),
  cum_runs integer not null default 0 check (cum_runs >= 0),  -- runs ever started
  unique (camera_id, type)
);

-- One row per committed recording: up to 5 minutes of one stream, one sample file.
create table recording (
  -- stream_id << 32 | recording_id; also the sample file's name (16 lowercase hex digits)
  composite_id integer primary key,
  open_id integer not null references open (id),  -- the open that wrote it
  stream_id integer not null references stream (id),
  run_offset integer not null check (run_offset >= 0),  -- 0 for the first recording of a run
  -- bit 1: trailing zero (the last frame has duration 0: the run ended uncleanly)
  flags integer not null default 0,
  sample_file_bytes integer not null check (sample_file_bytes > 0),  -- the file's exact size
  start_time_90k integer not null check (start_time_90k > 0),  -- wall time of the first frame
  prev_media_duration_90k integer not null check (prev_media_duration_90k >= 0),  -- stream's cum before
  prev_runs integer not null check (prev_runs >= 0),  -- stream's cum_runs before this one's run
  -- wall duration: media duration corrected toward the local clock by at most 500 ppm
  wall_duration_90k integer not null
      check (wall_duration_90k >= 0 and wall_duration_90k < 5 * 60 * 90000),
  media_duration_delta_90k integer not null,  -- media duration minus wall duration
  video_samples integer not null check (video_samples > 0),  -- frames
  video_sync_samples integer not null check (video_sync_samples > 0),  -- key frames
  video_sample_entry_id integer not null references video_sample_entry (id),
  end_reason text,  -- why the run ended after this recording (NULL: it did not)
  -- The whole video_index summarized for .mp4 layouts (nvr/db/frames_summary.py), so a
  -- request for whole recordings reads no index. All five are NULL only for a recording
  -- whose index did not decode, or disagreed with this row, when the database was
  -- upgraded to version 2 (such a recording is served by decoding its index).
  duration_runs integer check (duration_runs > 0),  -- runs of equal frame durations
  first_duration_90k integer check (first_duration_90k >= 0),  -- the first frame's
  first_duration_frames integer check (first_duration_frames > 0),  -- frames of its run
  last_duration_90k integer check (last_duration_90k >= 0),  -- the last frame's (0: trailing zero)
  -- blake2b-128 of the frames' durations, sizes and key flags (part of every ETag)
  index_digest blob check (
      (index_digest is null and duration_runs is null and first_duration_90k is null
       and first_duration_frames is null and last_duration_90k is null)
      or (length(index_digest) = 16 and duration_runs is not null
          and first_duration_90k is not null and first_duration_frames is not null
          and last_duration_90k is not null)),
  check (composite_id >> 32 = stream_id)
);

-- Covering index for listing a stream's recordings by time without touching the table.
create index recording_cover on recording (
  stream_id, start_time_90k, open_id, wall_duration_90k, media_duration_delta_90k,
  video_samples, video_sync_samples, video_sample_entry_id, sample_file_bytes,
  run_offset, flags, prev_media_duration_90k, prev_runs, end_reason
);

-- Per stream and local day, the totals of its committed recordings (the API's `days`, a
-- stream's totals), changed by every commit and deletion in the same transaction, so an open
-- reads these rows instead of every recording. Days are split at the midnights of the zone
-- in recording_day_zone; an open in another zone (or with no zone row: after an upgrade,
-- or a repair that deleted rows) builds them again from the recordings.
create table recording_day (
  stream_id integer not null references stream (id),
  day text not null,  -- local date, YYYY-MM-DD
  recordings integer not null check (recordings >= 0),  -- overlapping the day
  duration_90k integer not null check (duration_90k >= 0),  -- recorded wall time within it
  started integer not null check (started >= 0),  -- recordings starting in the day
  sample_file_bytes integer not null check (sample_file_bytes >= 0),  -- of those
  fs_bytes integer not null check (fs_bytes >= 0),  -- of those, in whole 4 KiB blocks
  primary key (stream_id, day)
) without rowid;

-- The same totals of a stream's archive-only recordings (archive_only_recording; version
-- 13, v12_to_v13.py), kept by the same transactions that add and remove those rows and
-- split in the same zone: the API's days count the recordings listed from the archive.
create table archive_only_day (
  stream_id integer not null references stream (id),
  day text not null,
  recordings integer not null check (recordings >= 0),
  duration_90k integer not null check (duration_90k >= 0),
  started integer not null check (started >= 0),
  sample_file_bytes integer not null check (sample_file_bytes >= 0),
  fs_bytes integer not null check (fs_bytes >= 0),
  primary key (stream_id, day)
) without rowid;

-- The IANA zone recording_day and archive_only_day are split in: at most one row (none:
-- to be built).
create table recording_day_zone (
  zone text not null
);

-- Per stream, local day and local hour, the seconds with motion of its committed
-- recordings starting in that hour (the API's motion bands), changed with every motion
-- summary stored and every recording deleted, in the same transaction; rows reaching 0
-- are deleted. Split in the zone of event_total_zone, like signal_day.
create table motion_hour (
  stream_id integer not null references stream (id),
  day text not null,  -- local date, YYYY-MM-DD
  hour integer not null check (hour between 0 and 23),  -- local hour the recordings start in
  seconds integer not null,
  primary key (stream_id, day, hour)
) without rowid;

-- Per signal, local day and state (1..255; 0, unknown, is not counted), the time the
-- signal spent in that state between consecutive changes (the open end after its last
-- change is added when read), changed with every signal_change write in the same
-- transaction; rows reaching 0 are deleted.
create table signal_day (
  signal_id integer not null references signal (id),
  day text not null,  -- local date, YYYY-MM-DD
  state integer not null check (state between 1 and 255),
  duration_90k integer not null,
  primary key (signal_id, day, state)
) without rowid;

-- The IANA zone motion_hour and signal_day are split in: at most one row (none: to be
-- built; an open in another zone builds both again from recording_motion and
-- signal_change).
create table event_total_zone (
  zone text not null
);

-- Diagnostics about a recording's timing and content; not needed for playback.
create table recording_integrity (
  composite_id integer primary key references recording (composite_id),
  -- assigned start time minus the start the local clock suggests (90k; drift indicator)
  local_time_delta_90k integer,
  -- monotonic time from the open to the recording's start (90k)
  local_time_since_open_90k integer,
  -- assigned end time minus the end the local clock suggests, after correction (90k)
  wall_time_delta_90k integer,
  sample_file_sha256 blob check (sample_file_sha256 is null or length(sample_file_sha256) = 32)
);

-- What playback needs beyond the recording row.
create table recording_playback (
  composite_id integer primary key references recording (composite_id),
  -- per frame: varint(zigzag(duration delta) << 1 | is_key), varint(zigzag(size delta per kind))
  video_index blob not null check (length(video_index) > 0)
);

-- Motion seen in a recording (nvr/motion/summary.py): per second of the recording's media
-- time, which cells of a 16 x 16 grid moved and how much. Written when the recording is
-- committed (or later, if analysis lags); deleted with the recording.
create table recording_motion (
  composite_id integer primary key references recording (composite_id),
  cells blob not null check (length(cells) = 32),  -- union of the cells that moved (bitmap)
  -- 4 bytes per (second, moved cell): uint16 LE second, uint8 cell, uint8 level (1..255)
  entries blob not null check (length(entries) % 4 = 0),
  global_seconds blob not null check (length(global_seconds) % 2 = 0),  -- uint16 LE seconds
  motion_seconds integer not null check (motion_seconds >= 0),  -- seconds with motion
  frames integer not null check (frames >= 0),  -- pictures analysed
  skipped integer not null check (skipped >= 0),  -- frames skipped: analysis fell behind
  -- `cells` again as four signed 64-bit integers (bit c % 64 of cells_{c // 64}), so that
  -- motion search tests a region with `&` and reads entries only of recordings that meet it
  cells_0 integer not null default 0,
  cells_1 integer not null default 0,
  cells_2 integer not null default 0,
  cells_3 integer not null default 0
);

-- Recordings whose rows are gone but whose sample files may still exist. A row is deleted
-- only after the file is unlinked and the directory fsynced.
create table garbage (
  sample_file_dir_id integer not null references sample_file_dir (id),
  composite_id integer not null,
  primary key (sample_file_dir_id, composite_id)
) without rowid;

-- Redactions (tombstones, issue 16): a range of a stream's wall time that is treated as
-- never recorded from the moment its row commits. Never deleted (retention included):
-- the list of who removed what, when and why.
create table redaction (
  id integer primary key,
  stream_id integer not null references stream (id),
  start_time_90k integer not null check (start_time_90k >= 0),
  end_time_90k integer not null check (end_time_90k > start_time_90k),
  reason text not null,
  user_id integer,                  -- who asked (null: a bind's grant, no user); no
                                    -- foreign key: the record outlives a deleted user
  username text,                    -- their name then
  creation_time_90k integer not null
);
create index redaction_stream on redaction (stream_id, start_time_90k);

-- Codec parameters shared by recordings (an .mp4 sample entry).
create table video_sample_entry (
  id integer primary key,
  width integer not null check (width > 0),    -- displayed pixels after cropping
  height integer not null check (height > 0),
  rfc6381_codec text not null,                 -- e.g. avc1.64001f, hvc1.1.6.L93.B0
  data blob unique not null check (length(data) > 8),  -- the whole avcC or hvcC box
  pasp_h_spacing integer not null default 1 check (pasp_h_spacing > 0),  -- pixel aspect ratio
  pasp_v_spacing integer not null default 1 check (pasp_v_spacing > 0)
);

create table user (
  id integer primary key,
  username text unique not null check (length(username) between 1 and 64),
  -- JSON: {"disabled": bool, "preferences": object}
  config text not null default '{}' check (json_valid(config)),
  password_hash text,  -- argon2id PHC string; NULL: password login impossible
  password_id integer not null default 0,  -- bumped on every password change
  password_failure_count integer not null default 0,  -- failed logins ever
  unix_uid integer,  -- local user allowed in over a Unix socket, if any
  -- JSON: {"viewVideo": bool, "readCameraConfigs": bool, "updateSignals": bool,
  --        "adminUsers": bool, "protectVideo": bool, "cameras": [uuid text]?}
  -- "cameras" present: every permission applies only to those cameras (by uuid)
  permissions text not null default '{}' check (json_valid(permissions))
);

create table user_session (
  -- SHA-256 of the session id given to the client; the id itself is never stored
  session_id_hash blob primary key not null check (length(session_id_hash) = 32),
  user_id integer not null references user (id),
  seed blob not null check (length(seed) = 32),  -- secret the CSRF token is derived from
  -- cookie flags: 1 HttpOnly, 2 Secure, 4 SameSite=Lax, 8 SameSite=Strict
  flags integer not null,
  domain text,
  description text,
  creation_password_id integer,  -- user.password_id when created
  creation_time_sec integer not null,
  creation_user_agent text,
  creation_peer_addr text,
  revocation_time_sec integer,  -- NULL: not revoked
  revocation_user_agent text,
  revocation_peer_addr text,
  revocation_reason integer,  -- 1 logout, 2 password change, 3 admin, 4 expired
  revocation_reason_detail text,
  last_use_time_sec integer,
  last_use_user_agent text,
  last_use_peer_addr text,
  use_count integer not null default 0,
  -- JSON permissions of this session (a subset of the user's)
  permissions text not null default '{}' check (json_valid(permissions))
) without rowid;

create index user_session_uid on user_session (user_id);

-- Signals (Moonfire NVR's model): a signal is something with a state that changes over
-- time (a camera's motion, a door contact, an alarm zone), of a type that enumerates its
-- states. State 0 always means "unknown" and is never stored in signal_type_state.
create table signal_type (
  id integer primary key,
  uuid blob unique not null check (length(uuid) = 16),  -- the id the HTTP API uses
  short_name text unique not null check (length(short_name) between 1 and 64)
);

-- The states of a signal type.
create table signal_type_state (
  type_id integer not null references signal_type (id),
  value integer not null check (value between 1 and 255),
  name text not null check (length(name) between 1 and 64),
  motion integer not null default 0 check (motion in (0, 1)),  -- 1: means motion
  color text check (color is null or length(color) between 1 and 32),  -- HTML color
  primary key (type_id, value)
) without rowid;

create table signal (
  id integer primary key,
  uuid blob unique not null check (length(uuid) = 16),
  type_id integer not null references signal_type (id),
  short_name text unique not null check (length(short_name) between 1 and 64)
);

-- Cameras a signal is tied to. "direct": the signal is about what the camera sees (its
-- motion); "indirect": about something nearby (a door in view). Retention keeps a
-- signal's changes as long as the oldest recording of any camera tied to it.
create table signal_camera (
  signal_id integer not null references signal (id),
  camera_id integer not null references camera (id),
  relation text not null check (relation in ('direct', 'indirect')),
  primary key (signal_id, camera_id)
) without rowid;

-- A signal's state from time_90k (wall time) until its next change. Before its first
-- change a signal is in state 0 (unknown); consecutive changes of a signal never have
-- the same state.
create table signal_change (
  signal_id integer not null references signal (id),
  time_90k integer not null check (time_90k > 0),
  state integer not null check (state between 0 and 255),
  primary key (signal_id, time_90k)
) without rowid;

-- Changes of every signal by time (GET /api/signals), covering.
create index signal_change_time on signal_change (time_90k, signal_id, state);

-- Spans of a camera's video that retention keeps (POST /api/cameras/<uuid>/protect). A
-- recording of any stream of the camera overlapping an active range (not removed, not
-- expired) is never deleted by retain_bytes, retain_days or the free-space floor. Rows
-- stay after removal: who protected and who removed what, and when, is kept.
create table protected_range (
  id integer primary key,
  camera_id integer not null references camera (id),
  start_time_90k integer not null check (start_time_90k >= 0),
  end_time_90k integer not null check (end_time_90k > start_time_90k),
  reason text not null check (length(reason) between 1 and 1000),
  expires_time_90k integer,  -- NULL: never; protects until this wall time otherwise
  created_time_90k integer not null,
  created_by text not null,  -- e.g. "user 'alice'"
  removed_time_90k integer,  -- NULL: not removed
  removed_by text,
  check ((removed_time_90k is null) = (removed_by is null))
);

create index protected_range_camera on protected_range (camera_id, removed_time_90k);

-- An archive: a bucket (and key prefix) of S3-compatible object storage that recordings
-- are copied to (docs/design.md, "Archive tier"). Its credentials are in config, like a
-- camera's: never logged, never in the API.
create table archive (
  id integer primary key,
  uuid blob unique not null check (length(uuid) = 16),
  short_name text unique not null check (length(short_name) between 1 and 64),
  -- JSON: {"endpoint": str, "bucket": str, "prefix": str, "region": str,
  --        "access_key": str, "secret_key": str, "retain_days": int?, "retain_bytes": int?,
  --        "max_rate": int? (bytes/s), "require_archived": bool}
  config text not null default '{}' check (json_valid(config))
);

-- The streams an archive copies.
create table archive_stream (
  archive_id integer not null references archive (id),
  stream_id integer not null references stream (id),
  primary key (archive_id, stream_id)
) without rowid;

-- One row per recording stored in an archive: its sample-file object and its description
-- object were both written and the server verified the checksums sent with them. The row
-- outlives the local recording (no reference to `recording`); archive retention deletes it
-- after the objects. Only a completed upload ever adds a row.
create table archived_recording (
  archive_id integer not null references archive (id),
  composite_id integer not null,
  start_time_90k integer not null check (start_time_90k > 0),
  wall_duration_90k integer not null check (wall_duration_90k >= 0),
  sample_file_bytes integer not null check (sample_file_bytes > 0),
  sample_file_sha256 blob not null check (length(sample_file_sha256) = 32),
  archived_time_90k integer not null,  -- wall time the upload completed
  primary key (archive_id, composite_id)
) without rowid;

-- Per archive and stream whose recordings it held (version 12, v11_to_v12.py): the keys
-- its objects are under and the highest recording id the archive's own retention deleted.
-- No foreign key to `stream`: the row outlives a deleted camera, so that its archived
-- recordings still age out under these keys. The uploader never uploads a recording of
-- the stream with an id at or below `expired_through_id` (retention deleted it, or would).
create table archive_stream_retention (
  archive_id integer not null references archive (id),
  stream_id integer not null,
  camera_uuid blob not null check (length(camera_uuid) = 16),
  stream_type text not null check (stream_type in ('main', 'sub', 'ext')),
  expired_through_id integer not null default -1,
  primary key (archive_id, stream_id)
) without rowid;

-- Recordings whose local sample file is gone (local retention deleted it) while an archive
-- holds them (version 8, v7_to_v8.py): the `recording` row and its `video_index`, moved
-- here in the flush that deleted the file, so the recording stays listed and playable
-- from the archive with the same bytes and ETags; or written by `nvr archive restore`
-- from the archive's description objects. Deleted once no archive holds the recording.
-- Columns as `recording`'s (see there); `open_id` has no foreign key: a restored
-- database has no row for the open that wrote it.
create table archive_only_recording (
  composite_id integer primary key,
  open_id integer not null,
  stream_id integer not null references stream (id),
  run_offset integer not null check (run_offset >= 0),
  flags integer not null default 0,
  sample_file_bytes integer not null check (sample_file_bytes > 0),
  start_time_90k integer not null check (start_time_90k > 0),
  prev_media_duration_90k integer not null check (prev_media_duration_90k >= 0),
  prev_runs integer not null check (prev_runs >= 0),
  wall_duration_90k integer not null
      check (wall_duration_90k >= 0 and wall_duration_90k < 5 * 60 * 90000),
  media_duration_delta_90k integer not null,
  video_samples integer not null check (video_samples > 0),
  video_sync_samples integer not null check (video_sync_samples > 0),
  video_sample_entry_id integer not null references video_sample_entry (id),
  end_reason text,
  duration_runs integer check (duration_runs > 0),
  first_duration_90k integer check (first_duration_90k >= 0),
  first_duration_frames integer check (first_duration_frames > 0),
  last_duration_90k integer check (last_duration_90k >= 0),
  index_digest blob check (index_digest is null or length(index_digest) = 16),
  video_index blob not null check (length(video_index) > 0),
  check (composite_id >> 32 = stream_id)
);
create index archive_only_recording_time on archive_only_recording (stream_id, start_time_90k);
-- Which archives hold a recording, by recording (the primary key is by archive first).
create index archived_recording_cid on archived_recording (composite_id);
