-- MLflow's tracking tables live in a database of their own: its migrations would collide with
-- Dagster's (both keep an alembic_version table). Run once, when the data volume is created,
-- by Debian's postgres image (deployment/docker/postgres) and by the upstream one alike.
CREATE DATABASE mlflow OWNER dagster;
