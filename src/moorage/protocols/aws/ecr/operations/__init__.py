"""The ECR API's operations, one module per group (repositories, images, layers, ...); each
handler is marked with :func:`moorage.protocols.aws.operations.operation`."""
