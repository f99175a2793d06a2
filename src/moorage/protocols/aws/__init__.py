"""The AWS APIs: AWS JSON 1.1 on ``POST /``, the service and operation named by ``X-Amz-Target``.

What every service shares:

app.py          mount(): one service on the shared route (Endpoint picks it by target prefix)
dispatch.py     the request pipeline (its docstring lists the steps and their errors)
auth.py         ApiAuthenticator, the port that turns a signed request into a Principal
context.py      ApiContext (caller, registry, region, services, authorize())
operations.py   OperationTable and @operation
shapes.py       botocore's service models: input validation, output writing (the only camelCase)
validation.py   constraint failures -> InvalidParameterException / ValidationException
errors.py       ApiError, front-door errors, how a service's domain exception table is read
responses.py    JSON 1.1 responses with x-amzn-RequestId
pagination.py   opaque nextToken cursors

Each service is a folder with only its own parts: ``ecr/`` (operations/, one module per group,
and errors.py, its exception table), ``secretsmanager/``.
"""
