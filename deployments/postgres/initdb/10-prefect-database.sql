-- Run once by the postgres image, on an empty data volume, as POSTGRES_USER (leadshop), after it
-- created POSTGRES_DB (leadshop: the results database). Prefect's own database lives on the same
-- server, owned by the same role: docker-compose.yml points the prefect-server service at it.
CREATE DATABASE prefect;
