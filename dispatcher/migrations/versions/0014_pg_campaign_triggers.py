"""messages.campaign_id checked per statement on PostgreSQL; server defaults for the ingest

On PostgreSQL only, the foreign key ``messages.campaign_id → campaigns.id`` (ON DELETE
CASCADE) is replaced by triggers that keep the same integrity and the same observable
behaviour, at a cost per statement instead of per row: the row-level check was ~4.4 of the
~10 CPU s the server spent storing a million-recipient campaign (``COPY``), the statement-level
one ~0.3 (issue 15; ``docs/architecture.md``, "Second pass").

* ``messages_campaign_insert``: after each ``INSERT``/``COPY`` into ``messages``, one look at
  the distinct campaign ids of the new rows (its transition table): those campaigns are locked
  ``FOR KEY SHARE``, as a foreign key locks them (a concurrent delete of one waits for this
  transaction, or this check sees it gone), and a missing one raises SQLSTATE 23503
  (``foreign_key_violation``) naming ``messages_campaign_id_fkey``, as the key did.
* ``messages_campaign_update``: the same check, per row, for an ``UPDATE`` that changes
  ``campaign_id`` (the ``WHEN`` clause: other updates of messages never call it; PostgreSQL
  allows no transition table on an ``UPDATE OF`` trigger).
* ``campaigns_cascade_delete``: after each ``DELETE FROM campaigns``, their messages are
  deleted (the old ``ON DELETE CASCADE``; the messages' own keys then cascade to
  ``status_events`` and set ``inbound_messages.reply_to_id`` to NULL, as before).
* ``campaigns_id_update``: changing the id of a campaign that has messages is refused (the
  old key's ``NO ACTION``).
* ``campaigns_truncate``: ``TRUNCATE campaigns`` is refused while messages remain (truncating
  both in one command still works).

The transition table and the lock assume READ COMMITTED, the isolation every connection of
the dispatcher uses: a ``DELETE FROM campaigns`` in a REPEATABLE READ transaction would not
see messages committed by another transaction after its snapshot. So the delete refuses to
run under any other isolation level rather than leave orphans.

Also on PostgreSQL only: server defaults for the columns every new message has the same value
in (``state`` pending, ``attempts``/``polls`` 0, ``error_transient`` false, ``updated_at``
now), so the ingest's ``COPY`` sends 8 columns, not 14 (the ORM still sends its own values).

SQLite keeps its foreign key (its check costs ~0.3 s a million rows) and its columns.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_FKEY = "messages_campaign_id_fkey"

_UPGRADE = f"""
ALTER TABLE messages DROP CONSTRAINT {_FKEY};

CREATE FUNCTION messages_campaign_check() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    wanted bigint[];
    missing bigint;
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        wanted := ARRAY[NEW.campaign_id];
    ELSE
        SELECT array_agg(ids.campaign_id) INTO wanted
        FROM (SELECT DISTINCT n.campaign_id FROM new_messages AS n) AS ids;
    END IF;
    IF wanted IS NULL THEN
        RETURN NULL;
    END IF;
    -- Locked as a foreign key locks them: a concurrent delete waits for this transaction.
    IF (SELECT count(*) FROM (
            SELECT 1 FROM campaigns AS c WHERE c.id = ANY (wanted) FOR KEY SHARE
        ) AS locked) < cardinality(wanted) THEN
        SELECT u.cid INTO missing FROM unnest(wanted) AS u(cid)
        WHERE NOT EXISTS (SELECT 1 FROM campaigns AS c WHERE c.id = u.cid)
        LIMIT 1;
        RAISE foreign_key_violation USING
            MESSAGE = 'insert or update on table "messages" violates foreign key '
                || 'constraint "{_FKEY}"',
            DETAIL = format('Key (campaign_id)=(%s) is not present in table "campaigns".',
                missing),
            SCHEMA = TG_TABLE_SCHEMA, TABLE = 'messages', CONSTRAINT = '{_FKEY}';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER messages_campaign_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION messages_campaign_check();

CREATE TRIGGER messages_campaign_update AFTER UPDATE OF campaign_id ON messages
    FOR EACH ROW WHEN (OLD.campaign_id IS DISTINCT FROM NEW.campaign_id)
    EXECUTE FUNCTION messages_campaign_check();

CREATE FUNCTION campaigns_cascade_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE feature_not_supported USING
            MESSAGE = 'campaigns are deleted in READ COMMITTED transactions only',
            HINT = 'their messages are deleted by a trigger that must see every committed one';
    END IF;
    DELETE FROM messages AS m USING old_campaigns AS o WHERE m.campaign_id = o.id;
    RETURN NULL;
END $$;

CREATE TRIGGER campaigns_cascade_delete AFTER DELETE ON campaigns
    REFERENCING OLD TABLE AS old_campaigns
    FOR EACH STATEMENT EXECUTE FUNCTION campaigns_cascade_delete();

CREATE FUNCTION campaigns_id_update() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM messages AS m WHERE m.campaign_id = OLD.id) THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'update or delete on table "campaigns" violates foreign key '
                || 'constraint "{_FKEY}" on table "messages"',
            DETAIL = format('Key (id)=(%s) is still referenced from table "messages".',
                OLD.id),
            SCHEMA = TG_TABLE_SCHEMA, TABLE = 'messages', CONSTRAINT = '{_FKEY}';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER campaigns_id_update AFTER UPDATE OF id ON campaigns
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION campaigns_id_update();

CREATE FUNCTION campaigns_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM messages) THEN
        RAISE feature_not_supported USING
            MESSAGE = 'cannot truncate a table referenced in a foreign key constraint',
            DETAIL = 'Table "messages" references "campaigns".',
            HINT = 'Truncate table "messages" at the same time.';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER campaigns_truncate AFTER TRUNCATE ON campaigns
    FOR EACH STATEMENT EXECUTE FUNCTION campaigns_truncate();

ALTER TABLE messages
    ALTER COLUMN state SET DEFAULT 'pending',
    ALTER COLUMN attempts SET DEFAULT 0,
    ALTER COLUMN error_transient SET DEFAULT false,
    ALTER COLUMN polls SET DEFAULT 0,
    ALTER COLUMN updated_at SET DEFAULT now();
"""

_DOWNGRADE = f"""
ALTER TABLE messages
    ALTER COLUMN state DROP DEFAULT,
    ALTER COLUMN attempts DROP DEFAULT,
    ALTER COLUMN error_transient DROP DEFAULT,
    ALTER COLUMN polls DROP DEFAULT,
    ALTER COLUMN updated_at DROP DEFAULT;
DROP TRIGGER campaigns_truncate ON campaigns;
DROP FUNCTION campaigns_truncate();
DROP TRIGGER campaigns_id_update ON campaigns;
DROP FUNCTION campaigns_id_update();
DROP TRIGGER campaigns_cascade_delete ON campaigns;
DROP FUNCTION campaigns_cascade_delete();
DROP TRIGGER messages_campaign_update ON messages;
DROP TRIGGER messages_campaign_insert ON messages;
DROP FUNCTION messages_campaign_check();
ALTER TABLE messages ADD CONSTRAINT {_FKEY}
    FOREIGN KEY (campaign_id) REFERENCES campaigns (id) ON DELETE CASCADE;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_UPGRADE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_DOWNGRADE)
