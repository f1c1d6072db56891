# Keepwarm image: one image, the command picks the role (web, worker, poll).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY jobs ./jobs
COPY templates ./templates
RUN pip install --no-cache-dir .
ENV KEEPWARM_INSTANCE_DIR=/data
VOLUME /data
EXPOSE 5000
CMD ["keepwarm", "web", "--host", "0.0.0.0", "--port", "5000"]
