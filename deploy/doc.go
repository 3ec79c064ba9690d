// Package deploy holds cdc2s3's deployment files: the CloudFormation stack
// (cloudformation.yaml), the ECS task definition and the Dockerfile. It has
// no code; its tests validate the files (docs/deploy.md).
package deploy
