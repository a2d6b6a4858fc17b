-- Each team's language and Welsh name, from the directory: messages to a team that works in
-- Welsh carry the rule reasons and names in Welsh; a bilingual team gets both, Welsh first.
ALTER TABLE notify.agencies
    ADD COLUMN name_cy  text NOT NULL DEFAULT '',
    ADD COLUMN language text NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'cy', 'both'));
