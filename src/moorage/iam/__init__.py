"""Identity and access: ECR actions and ARNs now; SigV4 and the policy engine with IAM."""
