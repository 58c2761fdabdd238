"""A small FastAPI service: GET /hello and POST /items, validated by pydantic, served by uvicorn."""
