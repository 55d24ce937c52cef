-- Code graph from git history (issue 8): a cursor per repository and the parsed facts of each
-- repository's head snapshot, so a run processes only the commits and files that are new.

CREATE TABLE code_repo_cursors (
    repo                text PRIMARY KEY,           -- the repository as given in COGO_REPOS
    organization_id     text REFERENCES organizations (id) ON DELETE CASCADE,  -- NULL: shared by the platform
    branch              text NOT NULL,
    last_sha            text NOT NULL,              -- the last commit whose changes are in the graph
    commits_processed   bigint NOT NULL DEFAULT 0,
    -- A rewritten history (force-push): the cursor was no ancestor of the new head, so the repository's
    -- graph was rebuilt. Kept so the rewrite is visible, not silently mixed in.
    rewrites            integer NOT NULL DEFAULT 0,
    last_rewrite_at     timestamptz,
    last_rewrite_from   text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER code_repo_cursors_updated_at BEFORE UPDATE ON code_repo_cursors
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One row per code file at the cursor: the blob it was parsed from and what parsing found (symbols,
-- imports, call sites; see cogo/code/facts.py). Skipped files (too large, binary) are here with their reason.
CREATE TABLE code_file_facts (
    repo                text NOT NULL,
    path                text NOT NULL,
    blob_sha            text NOT NULL,
    language            text NOT NULL,
    skipped             text,
    facts               jsonb NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, path)
);
CREATE INDEX code_file_facts_skipped_idx ON code_file_facts (repo) WHERE skipped IS NOT NULL;
