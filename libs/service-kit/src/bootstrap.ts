import { INestApplication, Logger, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

export interface BootstrapOptions {
  /** Shown in logs and in the OpenAPI title. */
  service: string;
  port: number;
}

/**
 * Starts one service the same way as every other: OpenAPI at /docs, shutdown hooks (SIGTERM
 * drains messaging before the database closes), listening on its port.
 */
export async function bootstrapService(module: Type<unknown>, options: BootstrapOptions): Promise<INestApplication> {
  const app = await NestFactory.create(module, { bufferLogs: false });
  app.enableShutdownHooks();
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder().setTitle(`${options.service} service`).setVersion('1').build(),
  );
  SwaggerModule.setup('docs', app, document);
  await app.listen(options.port, '0.0.0.0');
  new Logger('Bootstrap').log(`${options.service} listening on port ${options.port}`);
  return app;
}
