-- Creates what Loopitis needs before `loopitis migrate` runs: its own login role
-- and a database it owns. The postgres image runs this file once, when its data
-- volume is new, as the superuser; migrations then create the tables.

\set ON_ERROR_STOP on

-- The password comes from the container's environment (config.properties), so
-- it is never written into this file.
\getenv loopitis_password POSTGRES_LOOPITIS_PASSWORD
\if :{?loopitis_password}
\else
    DO $$ BEGIN
        RAISE EXCEPTION 'POSTGRES_LOOPITIS_PASSWORD is not set; set it in config.properties';
    END $$;
\endif

CREATE ROLE loopitis LOGIN PASSWORD :'loopitis_password';
CREATE DATABASE loopitis OWNER loopitis ENCODING 'UTF8' TEMPLATE template0;

-- Since PostgreSQL 15 only the owner may create objects in the public schema.
\connect loopitis
ALTER SCHEMA public OWNER TO loopitis;
