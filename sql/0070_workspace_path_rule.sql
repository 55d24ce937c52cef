-- One rule for a path relative to the workspace root, the same as cogo.workspace.fs.relative_parts (a
-- property test holds the two together): non-empty, at most 1024 bytes, no backslash, '/'-separated
-- components none of which is empty, '.' or '..', or longer than 255 bytes. The old check refused any '..' substring, so a file
-- named 'notes...v2.txt' failed a whole registration run.
CREATE FUNCTION cogo_safe_relative_path(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT p <> ''
       AND octet_length(p) <= 1024
       AND strpos(p, E'\\') = 0
       AND NOT (string_to_array(p, '/') && ARRAY['', '.', '..'])
       AND NOT EXISTS (SELECT 1 FROM unnest(string_to_array(p, '/')) AS c WHERE octet_length(c) > 255)
$$;

ALTER TABLE files DROP CONSTRAINT files_storage_path_check;
ALTER TABLE files ADD CONSTRAINT files_storage_path_check CHECK (cogo_safe_relative_path(storage_path));
