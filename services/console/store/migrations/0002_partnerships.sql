-- Local accounts serve named partnerships ('*': every one); a session carries them. Accounts
-- made before keep the reach they had until an administrator narrows them.
ALTER TABLE console.accounts ADD COLUMN partnerships text[] NOT NULL DEFAULT '{}';
UPDATE console.accounts SET partnerships = '{*}';
