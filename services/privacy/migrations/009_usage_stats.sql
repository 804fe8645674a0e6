-- Usage statistics: one row per UTC day and combination of dimensions, and how many calls had it.
-- Nothing here says who: no subject, pseudonym, device or address column, and no time finer than the day.
-- Cells counting fewer than LIKENESS_STATS_MIN_COUNT are withheld when read (likeness_privacy.domain.usage).
CREATE TABLE IF NOT EXISTS usage_stats (
    day date NOT NULL,
    interface text NOT NULL,
    operation text NOT NULL,
    spec_id text NOT NULL,
    country text NOT NULL,
    outcome text NOT NULL,
    app_version text NOT NULL,
    count bigint NOT NULL CHECK (count > 0),
    PRIMARY KEY (day, interface, operation, spec_id, country, outcome, app_version)
);
