# The privaudit image used by docker-compose.yml (consumer and simulator).
FROM python:3.11-slim
WORKDIR /src
COPY . /src
RUN pip install --no-cache-dir '.[confluent]' && useradd --create-home privaudit
USER privaudit
ENTRYPOINT ["privaudit"]
CMD ["--help"]
