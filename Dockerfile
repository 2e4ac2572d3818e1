# The LIMS image for docker-compose.yml (API, Prefect workers, migrate and deploy jobs).
# Not built on the machines this was written on: no Docker engine runs there and no image
# can be pulled; tests/test_compose.py checks that every COPY names a file that exists.
FROM python:3.11-slim
WORKDIR /opt/lims
COPY pyproject.toml README.md alembic.ini ./
COPY lims lims
COPY flows flows
COPY api api
COPY cli cli
COPY migrations migrations
RUN pip install --no-cache-dir -e .
