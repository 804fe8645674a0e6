-- Refused mesh calls are security events: who (certificate identity) called what (method).
ALTER TABLE security_events ADD COLUMN IF NOT EXISTS caller text NOT NULL DEFAULT '';
ALTER TABLE security_events ADD COLUMN IF NOT EXISTS method text NOT NULL DEFAULT '';
