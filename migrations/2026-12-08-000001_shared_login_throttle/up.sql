-- The sign-in throttle's books shared across instances (RAPPORT_RATE_LIMIT_SHARED=true; see
-- src/auth/throttle.rs). Every instance reads them before a password or secret check and
-- records the outcome after, so all of them enforce one allowance. Keys are the sha256 (hex)
-- of the normalised account (email or client id) and of the client address: no email or
-- address is stored. UNLOGGED: throttling state, no WAL, nothing on the replicas; a crash
-- of the server empties them, which forgets every failure, as a restart of the service did.
-- Rows past their window are deleted by the instances now and then.

-- Failures per account since its last success, while they follow each other within the
-- window (15 minutes).
CREATE UNLOGGED TABLE login_throttle_accounts (
    account text PRIMARY KEY,
    failures integer NOT NULL CHECK (failures > 0),
    last_at timestamptz NOT NULL
);
CREATE INDEX login_throttle_accounts_last_at ON login_throttle_accounts (last_at);

-- The accounts that failed from each address, and when last: an address is slowed by how
-- many different accounts failed from it within the window.
CREATE UNLOGGED TABLE login_throttle_address_failures (
    address text NOT NULL,
    account text NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (address, account)
);
CREATE INDEX login_throttle_address_failures_at ON login_throttle_address_failures (at);

-- Accounts that signed in successfully from an address, and when last: exempt from that
-- address's rule for 30 days.
CREATE UNLOGGED TABLE login_throttle_known (
    account text NOT NULL,
    address text NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (account, address)
);
CREATE INDEX login_throttle_known_at ON login_throttle_known (at);
