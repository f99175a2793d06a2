"""The ECR control-plane API: AWS JSON 1.1 on ``POST /``, operations named by ``X-Amz-Target``.

app.py          mount(): the route, for the composition root
dispatch.py     the request pipeline (its docstring lists the steps and their errors)
auth.py         ApiAuthenticator, the port that turns a signed request into a Principal
context.py      ApiContext (caller, registry, region, services, authorize())
operations/     OperationTable and @operation; one module per group of operations
shapes.py       botocore's ecr model: input validation, output writing (the only camelCase)
validation.py   constraint failures -> InvalidParameterException / ValidationException
errors.py       ApiError, front-door errors, the domain exception table
responses.py    JSON 1.1 responses with x-amzn-RequestId
"""
