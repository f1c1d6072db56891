# Keepwarm: one image; the command picks the role (web, worker, poll).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 KEEPWARM_INSTANCE_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY jobs ./jobs
COPY templates ./templates
RUN pip install --no-cache-dir . && useradd --system --home /data keepwarm && mkdir -p /data && chown keepwarm /data
USER keepwarm
VOLUME /data
EXPOSE 5000
CMD ["gunicorn", "--bind", "0.0.0.0:5000", "--workers", "2", "--threads", "4", "--timeout", "60", "service.wsgi:app"]
