"""A small HTTP JSON service: the example app for putting a program on the distroless Python images."""
