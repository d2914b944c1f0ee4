# syntax=docker/dockerfile:1
# Two stages: build with the Rust toolchain, run on slim Debian as an unprivileged user.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that a change to the code does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
COPY migrations ./migrations
# Newer mtimes than the stub build, so cargo rebuilds the crate itself.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin rapport \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/rapport
COPY --from=build /src/target/release/rapport /usr/local/bin/rapport
USER 10001:10001
# Without RAPPORT_SECRET_KEY the server key is generated here (mount a volume to keep it).
ENV RAPPORT_BIND=0.0.0.0:8080 \
    RAPPORT_LOG_FORMAT=json \
    RAPPORT_SECRET_KEY_FILE=/var/lib/rapport/secret.key
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["rapport"]
CMD ["serve"]
