# The demo application, built in release mode and run as a non-root user.
#   docker build -t toosimple-demo .
#   docker run --rm -p 8000:8000 toosimple-demo
# docker-compose.yml runs it with PostgreSQL, two workers and a mail catcher.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# rust-toolchain.toml pins the toolchain: rustup installs it on first use.
RUN cargo build --release --locked -p demo \
 && cp target/release/demo /usr/local/bin/demo

FROM debian:bookworm-slim
RUN useradd --system --create-home --home-dir /app --uid 10001 demo
COPY --from=build /usr/local/bin/demo /usr/local/bin/demo
USER demo
WORKDIR /app
ENV TOOSIMPLE_DATABASE_URL=sqlite:///app/toosimple.sqlite3 \
    TOOSIMPLE_MAIL_DIR=/app/outbox
EXPOSE 8000
ENTRYPOINT ["demo"]
CMD ["--bind", "0.0.0.0:8000"]
